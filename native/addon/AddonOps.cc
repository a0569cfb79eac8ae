// runOp(name, tensors, options) -> Promise<object>: single ops for tests and debugging (training
// runs whole steps natively; JS never drives a model op by op). Every op checks the sizes of the
// tensors it gets against its options before any native loop runs. Model ops run through the op
// table of options.backend (default "cpu"), as model code runs them, so one test can hold every
// backend to the references (test/backend-ops.test.ts); on a device backend the tensors are
// copied to it before the op and back after. lowrank_pass, the exp kernels and optimizer_step are
// the CPU backend's own.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "../backend/cpu/lowrank.h"
#include "../backend/registry.h"
#include "../backend/cpu/vexp.h"
#include "../optim/adamw.h"
#include "../optim/optimizer.h"
#include "AddonTensor.h"
#include "table_ops.h"
#include "PromiseWorker.h"
#include "addon_state.h"
#include "options.h"

namespace tk {
namespace {

// Device copies of an op's tensors on a backend whose memory the host cannot read: made when the
// op is marshalled, filled just before it runs and copied back just after (so in-place ops and
// outputs both come back). The same tensor named twice gets one copy.
class Staging {
 public:
  explicit Staging(std::shared_ptr<Backend> b) : b_(std::move(b)) {}
  ~Staging() {
    for (const Item& i : items_) b_->free(i.device, i.bytes);
  }
  void* stage(void* host, size_t bytes) {
    for (const Item& i : items_)
      if (i.host == host && i.bytes == bytes) return i.device;
    items_.push_back({host, b_->alloc(bytes ? bytes : 4), bytes});
    return items_.back().device;
  }
  void in() {
    for (const Item& i : items_) b_->copy_to_device(i.device, i.host, i.bytes);
  }
  void out() {
    for (const Item& i : items_) b_->copy_to_host(i.host, i.device, i.bytes);
  }

 private:
  struct Item {
    void* host;
    void* device;
    size_t bytes;
  };
  std::shared_ptr<Backend> b_;
  std::vector<Item> items_;
};

// Ops that are not in the op table: they run on the CPU alone.
bool cpu_only(const std::string& name) {
  return name == "lowrank_pass" || name == "lowrank_pass_reference" || name == "exp_shifted_sum" || name == "sigmoid" ||
         name == "optimizer_step";
}

}  // namespace

Napi::Value run_op_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* state = info.Env().GetInstanceData<AddonState>();
    check_arg(info.Length() >= 2 && info[0].IsString() && info[1].IsArray(), "Expected runOp(name, tensors[], options)");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    Napi::Array list = info[1].As<Napi::Array>();
    Napi::Object o = options_arg(info, 2);
    std::vector<Tensor> t;
    std::vector<Napi::Value> keep;
    for (uint32_t i = 0; i < list.Length(); ++i) {
      t.push_back(AddonTensor::unwrap(list.Get(i), ("tensors[" + std::to_string(i) + "]").c_str())->tensor());
      keep.push_back(list.Get(i));
    }
    auto need = [&](size_t count) {
      check_arg(t.size() == count, name + ": expected " + std::to_string(count) + " tensors but received " +
                                       std::to_string(t.size()));
    };
    const std::shared_ptr<Backend> backend = make_backend(option_string(o, "backend", "cpu"));
    const bool on_device = std::string(backend->name()) != "cpu";
    check_arg(!on_device || !cpu_only(name), name + " runs on the CPU backend only");
    auto staging = on_device ? std::make_shared<Staging>(backend) : nullptr;
    // A tensor the op reads or writes in the backend's memory (host data stays where it is: i32).
    auto device = [&](size_t i) -> void* { return staging ? staging->stage(t[i].raw(), t[i].bytes()) : t[i].raw(); };
    auto f32 = [&](size_t i, int64_t numel) -> float* {
      check_arg(t[i].dtype == Dtype::F32 && t[i].numel() == numel, name + ": expected tensors[" + std::to_string(i) +
                                                                       "] to be f32 with " + std::to_string(numel) +
                                                                       " elements but received " +
                                                                       dtype_name(t[i].dtype) + " " +
                                                                       t[i].shape_string());
      return static_cast<float*>(device(i));
    };
    auto i32 = [&](size_t i, int64_t numel) -> int32_t* {
      check_arg(t[i].dtype == Dtype::I32 && t[i].numel() == numel,
                name + ": expected tensors[" + std::to_string(i) + "] to be i32 with " + std::to_string(numel) + " elements");
      return t[i].data<int32_t>();
    };
    auto pool = state->pool;
    const Isa isa = state->isa;
    const ExecContext x = backend->context(isa, pool.get());
    auto result = std::make_shared<std::vector<double>>();
    std::function<void()> work;
    if (name == "rmsnorm_forward" || name == "rmsnorm_backward") {
      const int64_t rows = option_int(o, "rows", 1, 1, int64_t{1} << 40), dim = option_int(o, "dim", 1, 1, int64_t{1} << 30);
      const float eps = static_cast<float>(option_number(o, "eps", 1e-5));
      const bool fwd = name == "rmsnorm_forward";
      need(fwd ? 3 : 5);
      float *in = f32(0, rows * dim), *w = f32(1, dim), *a = f32(2, rows * dim);
      float *dx = fwd ? nullptr : f32(3, rows * dim), *dw = fwd ? nullptr : f32(4, dim);
      work = [=] {
        if (fwd) x.op->rmsnorm_forward(x, in, w, rows, dim, eps, a);
        else x.op->rmsnorm_backward(x, in, w, a, rows, dim, eps, dx, dw, nullptr);
      };
    } else if (name == "rope_forward" || name == "rope_backward") {
      const int64_t n = option_int(o, "tokens", 1, 1, int64_t{1} << 30), heads = option_int(o, "heads", 1, 1, 4096),
                    hd = option_int(o, "headDim", 2, 2, 1 << 16), rotary = option_int(o, "rotaryDim", hd, 2, hd);
      check_arg(hd % 2 == 0 && rotary % 2 == 0, "Expected an even headDim and rotaryDim");
      const float theta = static_cast<float>(option_number(o, "theta", 10000.0));
      need(2);
      float* v = f32(0, n * heads * hd);
      int32_t* pos = i32(1, n);
      const bool fwd = name == "rope_forward", interleaved = option_bool(o, "interleaved", true);
      work = [=] {
        const RopeTable table = rope_table(pos, n, hd, theta, interleaved, nullptr, rotary);
        if (fwd) x.op->rope_forward(x, v, heads, table);
        else x.op->rope_backward(x, v, heads, table);
      };
    } else if (name == "attention_forward" || name == "attention_backward") {
      const int64_t n = option_int(o, "tokens", 1, 1, 1 << 20), hq = option_int(o, "qHeads", 1, 1, 4096),
                    hkv = option_int(o, "kvHeads", 1, 1, 4096), hd = option_int(o, "headDim", 1, 1, 1 << 16),
                    window = option_int(o, "window", 0, 0, 1 << 30);
      const float softcap = static_cast<float>(option_number(o, "softcap", 0.0));
      check_arg(softcap >= 0 && std::isfinite(softcap), "Expected softcap >= 0");
      const AttentionScores scores{window, softcap};
      const bool bf16 = option_bool(o, "bf16", false);
      check_arg(hq % hkv == 0, "Expected qHeads divisible by kvHeads");
      const bool fwd = name == "attention_forward";
      // forward: q, k, v -> out, lse; backward: q, k, v, dout, then dq, dk, dv, and the forward's out and lse.
      need(fwd ? 5 : 9);
      float *q = f32(0, n * hq * hd), *k = f32(1, n * hkv * hd), *v = f32(2, n * hkv * hd), *o3 = f32(3, n * hq * hd);
      float *dq = fwd ? nullptr : f32(4, n * hq * hd), *dk = fwd ? nullptr : f32(5, n * hkv * hd),
            *dv = fwd ? nullptr : f32(6, n * hkv * hd);
      float *out = fwd ? o3 : f32(7, n * hq * hd), *lse = f32(fwd ? 4 : 8, n * hq);
      // Packed rows: consecutive sequences of `segment` rows (the last may be shorter).
      const int64_t segment = option_int(o, "segment", n, 1, n);
      work = [=] {
        AttentionSegments segments;
        for (int64_t t0 = 0; t0 < n; t0 += segment) segments.push_back({t0, std::min(segment, n - t0)});
        if (fwd) x.op->attention_forward(x, q, k, v, segments, hq, hkv, hd, out, lse, bf16, scores);
        else x.op->attention_backward(x, q, k, v, out, lse, o3, segments, hq, hkv, hd, dq, dk, dv, bf16, scores);
      };
    } else if (name == "lowrank_pass" || name == "lowrank_pass_reference") {
      // tensors: y [m, n], w [r, n], d [m, r], s [m, r], g [r, n]; options pick the products.
      const int64_t m = option_int(o, "m", 1, 1, int64_t{1} << 30), n = option_int(o, "n", 1, 1, int64_t{1} << 30),
                    r = option_int(o, "r", 1, 1, 4096);
      need(5);
      cpu::LowRankPass p;
      p.m = m, p.n = n, p.r = r, p.y = f32(0, m * n), p.ldy = n;
      if (option_bool(o, "down", true)) p.w = f32(1, r * n), p.d = f32(2, m * r);
      if (option_bool(o, "up", true)) p.s = f32(3, m * r), p.g = f32(4, r * n);
      p.alpha_down = static_cast<float>(option_number(o, "alphaDown", 1.0));
      p.alpha_up = static_cast<float>(option_number(o, "alphaUp", 1.0));
      p.beta = static_cast<float>(option_number(o, "beta", 0.0));
      p.g_transposed = option_bool(o, "transposed", false);
      const bool reference = name == "lowrank_pass_reference";
      work = [=, &pool_ = *pool] {
        if (reference) cpu::lowrank_pass_reference(p);
        else cpu::lowrank_pass(p, isa, pool_);
      };
    } else if (name == "swiglu_forward" || name == "swiglu_backward" || name == "geglu_forward" || name == "geglu_backward") {
      const bool fwd = name == "swiglu_forward" || name == "geglu_forward", gelu = name[1] == 'e';
      need(fwd ? 3 : 5);
      const int64_t n = t[0].numel();
      float *g = f32(0, n), *u = f32(1, n), *a = f32(2, n);
      float *dg = fwd ? nullptr : f32(3, n), *du = fwd ? nullptr : f32(4, n);
      work = [=] {
        if (fwd) (gelu ? x.op->geglu_forward : x.op->swiglu_forward)(x, g, u, n, a);
        else (gelu ? x.op->geglu_backward : x.op->swiglu_backward)(x, g, u, a, n, dg, du);
      };
    } else if (name == "gelu_forward" || name == "gelu_backward") {
      const bool fwd = name == "gelu_forward";
      need(fwd ? 2 : 3);
      const int64_t n = t[0].numel();
      const float* in = f32(0, n);
      float* out = f32(fwd ? 1 : 2, n);
      const float* dy = fwd ? nullptr : f32(1, n);
      work = [=] {
        if (fwd) x.op->gelu_forward(x, in, n, out);
        else x.op->gelu_backward(x, in, dy, n, out);
      };
    } else if (name == "cross_entropy") {
      const int64_t rows = option_int(o, "rows", 1, 1, int64_t{1} << 40), vocab = option_int(o, "vocab", 1, 1, int64_t{1} << 30);
      const bool grad = option_bool(o, "grad", false);
      need(2);
      float* logits = f32(0, rows * vocab);
      int32_t* labels = i32(1, rows);
      for (int64_t r = 0; r < rows; ++r)
        check_arg(labels[r] == kIgnoreIndex || (labels[r] >= 0 && labels[r] < vocab),
                  "Expected labels in [0, " + std::to_string(vocab) + ") or -100 but row " + std::to_string(r) +
                      " holds " + std::to_string(labels[r]));
      work = [=] {
        CrossEntropyResult r = x.op->cross_entropy(x, logits, labels, rows, vocab, grad);
        *result = {r.loss, static_cast<double>(r.count)};
      };
    } else if (name == "exp_shifted_sum" || name == "sigmoid") {
      need(2);
      const int64_t n = t[0].numel();
      const float* in = f32(0, n);
      float* y = f32(1, n);
      const float shift = static_cast<float>(option_number(o, "shift", 0.0));
      const bool sig = name == "sigmoid";
      work = [=] { *result = {sig ? (sigmoid(in, n, y, isa), 0.0) : exp_shifted_sum(in, shift, n, y, isa)}; };
    } else if (name == "adamw") {
      need(4);
      const int64_t n = t[0].numel();
      float *p = f32(0, n), *g = f32(1, n), *m = f32(2, n), *v = f32(3, n);
      const AdamWConfig c = adamw_options<AdamWConfig>(o, 1e-3, 0.01);
      const int64_t step = option_int(o, "step", 1, 1, int64_t{1} << 40);
      work = [=] { x.op->adamw_step(x, p, g, m, v, n, c, step, 1.0f); };
    } else if (name == "optimizer_step") {
      // The sharded optimizer step on `world` in-process ranks (dist/comm.h's LocalGroup): rank r
      // holds the gradient sums tensors[1 + r] of its own tokens (tokensR); tensors[0], [3], [4]
      // are the parameters and moments, replaced by the result (all ranks' parameters must agree,
      // and the moments are stitched from the shards; at stage 0 every rank's must agree too). Returns [gradNorm, tokens, ranks agree].
      const int world = static_cast<int>(option_int(o, "world", 1, 1, 2));
      need(5);
      const int64_t n = t[0].numel();
      float *p = f32(0, n), *m = f32(3, n), *v = f32(4, n);
      const float* grads[2] = {f32(1, n), f32(2, n)};
      OptimizerStepArgs a;
      a.adamw = adamw_options<AdamWConfig>(o, 1e-3, 0.01);
      a.max_grad_norm = option_number(o, "maxGradNorm", 0.0);
      a.stage = static_cast<int>(option_int(o, "stage", 1, 0, 2));
      const double tokens[2] = {option_number(o, "tokens0", 1.0), option_number(o, "tokens1", 0.0)};
      if (option_number(o, "scaleLength", 0) > 0)
        a.lr_scales.push_back({option_int(o, "scaleOffset", 0, 0, n), option_int(o, "scaleLength", 0, 0, n),
                               static_cast<float>(option_number(o, "scale", 1.0))});
      const int64_t step = option_int(o, "step", 1, 1, int64_t{1} << 40);
      work = [=] {
        const ShardLayout layout = shard_layout(n, world);
        const bool sharded = moments_sharded(layout, a.stage);
        std::vector<std::vector<float>> P(world), G(world), M(world), V(world);
        std::vector<OptimizerStepResult> r(world);
        for (int q = 0; q < world; ++q) {
          P[q].assign(static_cast<size_t>(layout.padded()), 0.0f), G[q] = P[q];
          std::copy(p, p + n, P[q].begin());
          const float* g = world == 1 ? grads[0] : grads[q];
          std::copy(g, g + n, G[q].begin());
          const int64_t b = sharded ? layout.begin(q) : 0, e = sharded ? layout.end(q) : n;
          M[q].assign(m + b, m + e), V[q].assign(v + b, v + e);
          if (sharded) M[q].resize(static_cast<size_t>(layout.shard)), V[q].resize(static_cast<size_t>(layout.shard));
        }
        ExecContext rank_x = x;
        rank_x.pool = nullptr;  // each rank's thread steps its shard alone (the optimizer's ops take a null pool)
        LocalGroup group(world);
        group.run([&](Comm& c) {
          const int q = c.rank();
          OptimizerStepArgs mine = a;
          mine.tokens = world == 1 ? tokens[0] + tokens[1] : tokens[q];
          r[q] = optimizer_step(P[q].data(), G[q].data(), M[q].data(), V[q].data(), layout, mine, step, c, rank_x);
        });
        bool agree = true;
        for (int q = 0; q < world; ++q) {
          agree = agree && std::equal(P[q].begin(), P[q].begin() + n, P[0].begin()) && r[q].grad_norm == r[0].grad_norm;
          agree = agree && (sharded || (M[q] == M[0] && V[q] == V[0]));
          const int64_t b = sharded ? layout.begin(q) : 0, e = sharded ? layout.end(q) : n;
          std::copy(M[q].begin(), M[q].begin() + (e - b), m + b), std::copy(V[q].begin(), V[q].begin() + (e - b), v + b);
        }
        std::copy(P[0].begin(), P[0].begin() + n, p);
        *result = {r[0].grad_norm, r[0].tokens, agree ? 1.0 : 0.0};
      };
    } else if (!table_op({name, t, o, x, f32, i32, device, need}, work, *result)) {
      fail(ErrorCode::InvalidArgument, "Expected a known op name but received \"" + name + "\"");
    }
    // repeat: the op runs that many more times after the first, and the median seconds of those
    // (the backend synchronized after each, the copies to and from a device left out) is appended
    // to the result: how the GPU bench times single ops.
    const int64_t repeat = option_int(o, "repeat", 0, 0, 10000);
    check_arg(!repeat || !cpu_only(name), name + " cannot be timed with repeat");
    if (staging || repeat) {
      work = [work, staging, x, repeat, result] {
        if (staging) staging->in();
        work();
        x.backend->synchronize();
        std::vector<double> seconds;
        for (int64_t i = 0; i < repeat; ++i) {
          const auto t0 = std::chrono::steady_clock::now();
          work();
          x.backend->synchronize();
          seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        if (repeat) {
          std::sort(seconds.begin(), seconds.end());
          result->push_back(seconds[seconds.size() / 2]);
        }
        if (staging) staging->out();
      };
    }
    std::vector<Tensor> hold = t;
    return PromiseWorker::start(
        info.Env(), [work, hold, pool, backend] { work(); },
        [result](Napi::Env env) -> Napi::Value {
          Napi::Array out = Napi::Array::New(env, result->size());
          for (size_t i = 0; i < result->size(); ++i) out.Set(static_cast<uint32_t>(i), (*result)[i]);
          return out;
        },
        keep);
  });
}

}  // namespace tk
