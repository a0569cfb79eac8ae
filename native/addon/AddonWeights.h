// JS class Weights: a frozen weight matrix in f32, bf16, f16, NF4 or a GGUF block format.
// Made by quantizeWeights() (async) or from existing parts (a bitsandbytes or GGUF checkpoint);
// GEMMs take it as their B operand and decode it panel by panel.
#pragma once
#include <napi.h>

#include <memory>

#include "../ops/weight_store.h"

namespace tk {

class AddonWeights : public Napi::ObjectWrap<AddonWeights> {
 public:
  static Napi::Function define(Napi::Env env);
  // new Weights({format, shape: [rows, cols], blocksize?, doubleQuant?, data, absmax?, qabsmax?, absmax2?, offset?})
  explicit AddonWeights(const Napi::CallbackInfo& info);
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<const WeightStore> store);
  // Returns the weights behind `value`, or nullptr if it is not a Weights object.
  static AddonWeights* unwrap_or_null(const Napi::Value& value);
  const std::shared_ptr<const WeightStore>& store() const { return store_; }

 private:
  Napi::Value info(const Napi::CallbackInfo& info);
  Napi::Value parts(const Napi::CallbackInfo& info);
  Napi::Value dequantize(const Napi::CallbackInfo& info);

  std::shared_ptr<const WeightStore> store_;
};

// quantizeWeights(tensor, {format, blocksize?, doubleQuant?}) -> Promise<Weights>
Napi::Value quantize_weights_binding(const Napi::CallbackInfo& info);

}  // namespace tk
