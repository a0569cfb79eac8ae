// JS class Tensor: a handle on a native tk::Tensor.
// Its bytes are exposed as an external ArrayBuffer over the native storage — no copy either way —
// and the object is type-tagged so a forged object can never be unwrapped as a tensor.
// dispose() frees the memory now instead of at garbage collection (whose finalizers only run once
// the event loop turns): it detaches the ArrayBuffer so JS can no longer reach the bytes. Native
// work already in flight keeps its own reference and finishes safely.
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
  void Finalize(Napi::Env env) override;

 private:
  Napi::Value dtype(const Napi::CallbackInfo& info);
  Napi::Value shape(const Napi::CallbackInfo& info);
  Napi::Value byte_length(const Napi::CallbackInfo& info);
  Napi::Value buffer(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  Napi::Value buffer_value(Napi::Env env);

  Tensor tensor_;
  Napi::Reference<Napi::ArrayBuffer> buffer_;  // created on first access
  std::shared_ptr<Storage>* buffer_hold_ = nullptr;  // the ArrayBuffer's reference, freed by its finalizer
  int64_t external_bytes_ = 0;  // reported to V8 by the allocating constructor
};

}  // namespace tk
