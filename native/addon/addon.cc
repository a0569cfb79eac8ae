// Module entry: registers the JS surface and owns the per-environment AddonState.
#include <napi.h>

#include <cstdlib>
#include <string>

#include "../backend/cpu/fma_peak.h"
#include "../backend/cpu/kernels.h"
#include "../backend/registry.h"
#ifdef TUNEKIT_WITH_CUDA
#include "../backend/cuda/cuda_backend.h"
#endif
#include "AddonTensor.h"
#include "AddonWeights.h"
#include "PromiseWorker.h"
#include "addon_state.h"
#include "errors.h"
#include "options.h"

namespace tk {

Napi::Value gemm_binding(const Napi::CallbackInfo& info);
Napi::Value lora_forward_binding(const Napi::CallbackInfo& info);
Napi::Value lora_backward_binding(const Napi::CallbackInfo& info);
Napi::Function define_model(Napi::Env env);
Napi::Value run_op_binding(const Napi::CallbackInfo& info);
Napi::Value open_distributed_binding(const Napi::CallbackInfo& info);
Napi::Value dist_all_reduce_binding(const Napi::CallbackInfo& info);
Napi::Value dist_broadcast_binding(const Napi::CallbackInfo& info);
Napi::Value dist_barrier_binding(const Napi::CallbackInfo& info);

namespace {

#ifndef TUNEKIT_BUILD_FLAVOUR
#define TUNEKIT_BUILD_FLAVOUR "unknown"
#endif

// Applies TUNEKIT_ISA / TUNEKIT_THREADS; bad values are reported by runtimeInfo, not fatal at load.
void init_state(AddonState& s) {
  const CpuFeatures& f = cpu_features();
  s.detected_isa = best_isa(f);
  s.isa = s.detected_isa;
  if (const char* env = std::getenv("TUNEKIT_ISA")) {
    Isa forced;
    if (parse_isa(env, &forced) && forced <= s.detected_isa) {
      s.isa = forced;
      s.isa_forced = true;
    }
  }
  cpu::set_decode_isa(s.isa);
  int threads = f.logical_cores;
  if (const char* env = std::getenv("TUNEKIT_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1 && n <= 1024) threads = n;
  }
  s.pool = std::make_shared<ThreadPool>(threads);
}

Napi::Value runtime_info(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    auto* s = env.GetInstanceData<AddonState>();
    const CpuFeatures& f = cpu_features();
    Napi::Object out = Napi::Object::New(env);
    out.Set("isa", isa_name(s->isa));
    out.Set("detectedIsa", isa_name(s->detected_isa));
    out.Set("isaForced", s->isa_forced);
    out.Set("threads", s->pool->size());
    Napi::Array backends = Napi::Array::New(info.Env());
    for (const std::string& name : backend_names()) backends.Set(backends.Length(), name);
    out.Set("backends", backends);
    out.Set("logicalCores", f.logical_cores);
    out.Set("buildFlavour", TUNEKIT_BUILD_FLAVOUR);
    out.Set("cpuVendor", f.vendor);
    Napi::Object feats = Napi::Object::New(env);
    feats.Set("avx2", f.avx2);
    feats.Set("avx512f", f.avx512f);
    feats.Set("avx512bf16", f.avx512_bf16);
    feats.Set("amxBf16", f.amx_bf16);
    feats.Set("amxPermissionDenied", f.amx_permission_denied);
    feats.Set("amxEmulated", f.amx_emulated);
    out.Set("cpuFeatures", feats);
#ifdef TUNEKIT_WITH_CUDA
    // The GPUs a model can run on ("cuda:N"), with the CUDA runtime this build carries and the
    // driver's version; `error` says why none can be used.
    const CudaRuntimeInfo ci = cuda_runtime_info();
    Napi::Object cuda = Napi::Object::New(env);
    auto version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
    cuda.Set("runtimeVersion", version(ci.runtime_version));
    cuda.Set("driverVersion", ci.driver_version ? Napi::Value(Napi::String::New(env, version(ci.driver_version))) : env.Null());
    if (!ci.error.empty()) cuda.Set("error", ci.error);
    Napi::Array devices = Napi::Array::New(env);
    for (const CudaDeviceInfo& d : ci.devices) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("device", "cuda:" + std::to_string(d.index));
      o.Set("name", d.name);
      o.Set("memoryBytes", static_cast<double>(d.memory_bytes));
      o.Set("freeBytes", static_cast<double>(d.free_bytes));
      o.Set("usedBytes", static_cast<double>(d.used_bytes));
      o.Set("peakBytes", static_cast<double>(d.peak_bytes));
      o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
      devices.Set(devices.Length(), o);
    }
    cuda.Set("devices", devices);
    out.Set("cuda", cuda);
#endif
    return out;
  });
}

// setRuntimeOptions({threads?, isa?}): applies to calls started afterwards.
Napi::Value set_runtime_options(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* s = info.Env().GetInstanceData<AddonState>();
    Napi::Object o = options_arg(info, 0);
    if (!o.Get("isa").IsUndefined()) {
      std::string name = option_string(o, "isa", "");
      Isa isa;
      check_arg(parse_isa(name, &isa), "Expected isa one of scalar, avx2, avx512, avx512bf16, amx but received " + name);
      if (isa > s->detected_isa)
        fail(ErrorCode::Unsupported, "isa " + name + " is not supported by this CPU (best: " +
                                         isa_name(s->detected_isa) + ")");
      s->isa = isa;
      s->isa_forced = isa != s->detected_isa;
      cpu::set_decode_isa(isa);
    }
    if (!o.Get("threads").IsUndefined()) {
      int n = static_cast<int>(option_int(o, "threads", 1, 1, 1024));
      if (n != s->pool->size()) s->pool = std::make_shared<ThreadPool>(n);
    }
    return info.Env().Undefined();
  });
}

// measureLimit(kind, seconds) -> Promise<number>: the machine's ceiling on the current pool and
// ISA — 'fp32', 'bf16' (vdpbf16ps) and 'amx' (tiles) in GFLOP/s, 'memory' (read bandwidth) in GB/s.
Napi::Value measure_limit(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* s = info.Env().GetInstanceData<AddonState>();
    const std::string kind = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    check_arg(kind == "fp32" || kind == "bf16" || kind == "amx" || kind == "memory",
              "Expected kind one of fp32, bf16, amx, memory but received \"" + kind + "\"");
    double seconds = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0.5;
    check_arg(seconds > 0 && seconds <= 60, "Expected seconds in (0, 60] for measureLimit");
    auto pool = s->pool;
    Isa isa = s->isa;
    auto result = std::make_shared<double>(0);
    return PromiseWorker::start(
        info.Env(),
        [pool, isa, seconds, kind, result] {
          if (kind == "fp32") *result = measure_fma_peak_gflops(isa, *pool, seconds);
          if (kind == "bf16") *result = measure_bf16_peak_gflops(isa, *pool, seconds);
          if (kind == "amx") *result = isa == Isa::Amx ? measure_amx_peak_gflops(*pool, seconds) : 0.0;
          if (kind == "memory") *result = measure_read_bandwidth_gbs(*pool, size_t{1} << 30, seconds);
        },
        [result](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, *result); });
  });
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* state = new AddonState();
  init_state(*state);
  env.SetInstanceData(state);  // deleted by the environment's cleanup
  Napi::Function tensor = AddonTensor::define(env), weights = AddonWeights::define(env);
  state->tensor_ctor = Napi::Persistent(tensor);
  state->weights_ctor = Napi::Persistent(weights);
  exports.Set("Tensor", tensor);
  exports.Set("Weights", weights);
  exports.Set("Model", define_model(env));
  exports.Set("runOp", Napi::Function::New(env, run_op_binding, "runOp"));
  exports.Set("quantizeWeights", Napi::Function::New(env, quantize_weights_binding, "quantizeWeights"));
  exports.Set("runtimeInfo", Napi::Function::New(env, runtime_info, "runtimeInfo"));
  exports.Set("setRuntimeOptions", Napi::Function::New(env, set_runtime_options, "setRuntimeOptions"));
  exports.Set("measureLimit", Napi::Function::New(env, measure_limit, "measureLimit"));
  exports.Set("gemm", Napi::Function::New(env, gemm_binding, "gemm"));
  exports.Set("loraLinearForward", Napi::Function::New(env, lora_forward_binding, "loraLinearForward"));
  exports.Set("loraLinearBackward", Napi::Function::New(env, lora_backward_binding, "loraLinearBackward"));
  exports.Set("openDistributed", Napi::Function::New(env, open_distributed_binding, "openDistributed"));
  exports.Set("distAllReduce", Napi::Function::New(env, dist_all_reduce_binding, "distAllReduce"));
  exports.Set("distBroadcast", Napi::Function::New(env, dist_broadcast_binding, "distBroadcast"));
  exports.Set("distBarrier", Napi::Function::New(env, dist_barrier_binding, "distBarrier"));
  return exports;
}

}  // namespace
}  // namespace tk

static Napi::Object InitTunekit(Napi::Env env, Napi::Object exports) { return tk::init(env, exports); }
NODE_API_MODULE(tunekit, InitTunekit)
