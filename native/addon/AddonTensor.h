// JS class Tensor: a handle on a native tk::Tensor.
// Its bytes are exposed as an external ArrayBuffer over the native storage — no copy either way —
// and the object is type-tagged so a forged object can never be unwrapped as a tensor.
#pragma once
#include <napi.h>

#include "../core/tensor.h"

namespace tk {

class AddonTensor : public Napi::ObjectWrap<AddonTensor> {
 public:
  static Napi::Function define(Napi::Env env);
  // new Tensor(dtype: string, shape: number[])
  explicit AddonTensor(const Napi::CallbackInfo& info);

  // A new JS Tensor sharing `tensor`'s storage.
  static Napi::Object wrap(Napi::Env env, const Tensor& tensor);
  // Unwraps `value` as a tensor or throws a TypeError naming `what`.
  static AddonTensor* unwrap(const Napi::Value& value, const char* what);
  const Tensor& tensor() const { return tensor_; }

 private:
  Napi::Value dtype(const Napi::CallbackInfo& info);
  Napi::Value shape(const Napi::CallbackInfo& info);
  Napi::Value byte_length(const Napi::CallbackInfo& info);
  Napi::Value buffer(const Napi::CallbackInfo& info);

  Tensor tensor_;
  Napi::Reference<Napi::ArrayBuffer> buffer_;  // created on first access
};

}  // namespace tk
