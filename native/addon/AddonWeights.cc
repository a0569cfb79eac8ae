#include "AddonWeights.h"

#include "AddonTensor.h"
#include "PromiseWorker.h"
#include "addon_state.h"
#include "errors.h"
#include "options.h"

namespace tk {
namespace {

constexpr napi_type_tag kWeightsTag = {0x3c5d1e2f4a6b7c8dULL, 0x91a2b3c4d5e6f708ULL};

Tensor optional_tensor(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return Tensor{};
  return AddonTensor::unwrap(v, key)->tensor();
}

WeightFormat format_option(const Napi::Object& o) {
  std::string name = option_string(o, "format", "");
  WeightFormat f;
  check_arg(parse_weight_format(name, &f),
            "Expected format one of f32, bf16, f16, nf4, q4_0, q4_1, q8_0 but received \"" + name + "\"");
  return f;
}

}  // namespace

Napi::Function AddonWeights::define(Napi::Env env) {
  return DefineClass(env, "Weights",
                     {
                         InstanceMethod<&AddonWeights::info>("info"),
                         InstanceMethod<&AddonWeights::parts>("parts"),
                         InstanceMethod<&AddonWeights::dequantize>("dequantize"),
                     });
}

AddonWeights::AddonWeights(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonWeights>(info) {
  guarded(info, [&]() -> Napi::Value {
    if (info.Length() == 1 && info[0].IsExternal()) {  // from wrap()
      store_ = *info[0].As<Napi::External<std::shared_ptr<const WeightStore>>>().Data();
    } else {
      Napi::Object o = options_arg(info, 0);
      auto s = std::make_shared<WeightStore>();
      s->format = format_option(o);
      Napi::Value shape = o.Get("shape");
      check_arg(shape.IsArray() && shape.As<Napi::Array>().Length() == 2, "Expected shape [rows, cols] for weights");
      Napi::Object dims = shape.As<Napi::Object>();
      s->rows = option_int(dims, "0", 0, 0, int64_t{1} << 40);
      s->cols = option_int(dims, "1", 0, 0, int64_t{1} << 40);
      s->blocksize = option_int(o, "blocksize", 64, 1, 1 << 20);
      s->double_quant = option_bool(o, "doubleQuant", false);
      s->offset = static_cast<float>(option_number(o, "offset", 0.0));
      s->data = optional_tensor(o, "data");
      s->absmax = optional_tensor(o, "absmax");
      s->qabsmax = optional_tensor(o, "qabsmax");
      s->absmax2 = optional_tensor(o, "absmax2");
      validate_weights(*s);
      store_ = std::move(s);
    }
    info.This().As<Napi::Object>().TypeTag(&kWeightsTag);
    return info.Env().Undefined();
  });
}

Napi::Object AddonWeights::wrap(Napi::Env env, std::shared_ptr<const WeightStore> store) {
  auto* state = env.GetInstanceData<AddonState>();
  return state->weights_ctor.New({Napi::External<std::shared_ptr<const WeightStore>>::New(env, &store)});
}

AddonWeights* AddonWeights::unwrap_or_null(const Napi::Value& value) {
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kWeightsTag)) return nullptr;
  return Unwrap(value.As<Napi::Object>());
}

Napi::Value AddonWeights::info(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("format", weight_format_name(store_->format));
    Napi::Array shape = Napi::Array::New(env, 2);
    shape.Set(0u, Napi::Number::New(env, static_cast<double>(store_->rows)));
    shape.Set(1u, Napi::Number::New(env, static_cast<double>(store_->cols)));
    o.Set("shape", shape);
    o.Set("blocksize", Napi::Number::New(env, static_cast<double>(store_->blocksize)));
    o.Set("doubleQuant", store_->double_quant);
    size_t bytes = store_->data.bytes();
    for (const Tensor* t : {&store_->qabsmax, &store_->absmax2}) bytes += t->storage ? t->bytes() : 0;
    if (!store_->double_quant && store_->absmax.storage) bytes += store_->absmax.bytes();
    o.Set("storedBytes", Napi::Number::New(env, static_cast<double>(bytes)));
    return o;
  });
}

Napi::Value AddonWeights::parts(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("data", AddonTensor::wrap(env, store_->data));
    if (store_->absmax.storage) o.Set("absmax", AddonTensor::wrap(env, store_->absmax));
    if (store_->double_quant) {
      o.Set("qabsmax", AddonTensor::wrap(env, store_->qabsmax));
      o.Set("absmax2", AddonTensor::wrap(env, store_->absmax2));
      o.Set("offset", Napi::Number::New(env, store_->offset));
    }
    return o;
  });
}

// dequantize(out?) -> Promise<Tensor>: into `out` (an f32 [rows, cols] tensor) or a new tensor.
Napi::Value AddonWeights::dequantize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto store = store_;
    auto* state = info.Env().GetInstanceData<AddonState>();
    const bool given = info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull();
    Tensor target;
    if (given) {
      target = AddonTensor::unwrap(info[0], "out")->tensor();
      check_arg(target.dtype == Dtype::F32 && target.rank() == 2 && target.shape[0] == store->rows &&
                    target.shape[1] == store->cols,
                "Expected out to be an f32 tensor of shape [" + std::to_string(store->rows) + ", " +
                    std::to_string(store->cols) + "] but received " + dtype_name(target.dtype) + " " +
                    target.shape_string());
    } else {
      target = Tensor::zeros(Dtype::F32, {store->rows, store->cols});
    }
    auto pool = state->pool;
    Napi::Value keep = given ? info[0] : info.This();
    return PromiseWorker::start(
        info.Env(), [store, target, pool] { dequantize_weights(*store, target.data<float>(), *pool); },
        [target, given, keep_ref = std::make_shared<Napi::Reference<Napi::Value>>(Napi::Persistent(keep))](
            Napi::Env env) -> Napi::Value { return given ? keep_ref->Value() : AddonTensor::wrap(env, target); },
        {info.This()});
  });
}

Napi::Value quantize_weights_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Tensor& w = AddonTensor::unwrap(info[0], "weights")->tensor();
    check_arg(w.dtype == Dtype::F32 && w.rank() == 2,
              "Expected a 2-D f32 tensor to quantize but received " + std::string(dtype_name(w.dtype)) + " " +
                  w.shape_string());
    Napi::Object o = options_arg(info, 1);
    const WeightFormat format = format_option(o);
    const int64_t blocksize = option_int(o, "blocksize", 64, 1, 1 << 20);
    const bool double_quant = option_bool(o, "doubleQuant", false);
    auto result = std::make_shared<std::shared_ptr<const WeightStore>>();
    return PromiseWorker::start(
        info.Env(),
        [w, format, blocksize, double_quant, result] {
          *result = std::make_shared<WeightStore>(
              quantize_weights(w.data<float>(), w.shape[0], w.shape[1], format, blocksize, double_quant));
        },
        [result](Napi::Env env) -> Napi::Value { return AddonWeights::wrap(env, *result); }, {info[0]});
  });
}

}  // namespace tk
