#include "AddonTensor.h"

#include <cmath>

#include "addon_state.h"
#include "errors.h"

namespace tk {
namespace {

// Random 128-bit tag for Tensor handles (napi_type_tag_object).
constexpr napi_type_tag kTensorTag = {0x7a1e6b3c2f904d15ULL, 0x9b8c7d6e5f4a3b2cULL};

std::vector<int64_t> read_shape(const Napi::Value& value) {
  check_arg(value.IsArray(), "Expected an array of non-negative integers for shape");
  Napi::Array array = value.As<Napi::Array>();
  check_arg(array.Length() <= 8, "Expected a shape of at most 8 dimensions but received " +
                                     std::to_string(array.Length()));
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value d = array.Get(i);
    double v = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    check_arg(v >= 0 && v <= 9007199254740991.0 && std::floor(v) == v,
              "Expected non-negative integer at shape[" + std::to_string(i) + "]");
    shape.push_back(static_cast<int64_t>(v));
  }
  return shape;
}

}  // namespace

Napi::Function AddonTensor::define(Napi::Env env) {
  return DefineClass(env, "Tensor",
                     {
                         InstanceAccessor<&AddonTensor::dtype>("dtype"),
                         InstanceAccessor<&AddonTensor::shape>("shape"),
                         InstanceAccessor<&AddonTensor::byte_length>("byteLength"),
                         InstanceAccessor<&AddonTensor::buffer>("buffer"),
                         InstanceMethod<&AddonTensor::dispose>("dispose"),
                     });
}

AddonTensor::AddonTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonTensor>(info) {
  guarded(info, [&]() -> Napi::Value {
    if (info.Length() == 1 && info[0].IsExternal()) {  // from wrap(): adopt a native tensor
      tensor_ = *info[0].As<Napi::External<Tensor>>().Data();
      info.This().As<Napi::Object>().TypeTag(&kTensorTag);
      return info.Env().Undefined();
    }
    check_arg(info.Length() >= 2 && info[0].IsString(), "Expected dtype string as first argument");
    Dtype dtype;
    std::string name = info[0].As<Napi::String>().Utf8Value();
    check_arg(parse_dtype(name, &dtype), "Expected dtype one of f32, bf16, f16, i32, u8 but received " + name);
    tensor_ = Tensor::zeros(dtype, read_shape(info[1]));
    // Tell V8 about the native bytes so large tensors make the GC run (and free them) in time.
    external_bytes_ = static_cast<int64_t>(tensor_.bytes());
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), external_bytes_);
    info.This().As<Napi::Object>().TypeTag(&kTensorTag);
    return info.Env().Undefined();
  });
}

Napi::Value AddonTensor::dispose(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (!buffer_.IsEmpty()) {
      Napi::ArrayBuffer ab = buffer_.Value();
      if (!ab.IsDetached()) ab.Detach();
      buffer_hold_->reset();  // the holder itself is deleted by the ArrayBuffer's finalizer
      buffer_.Reset();
    }
    tensor_.storage.reset();
    if (external_bytes_) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), -external_bytes_);
    external_bytes_ = 0;
    return info.Env().Undefined();
  });
}

void AddonTensor::Finalize(Napi::Env env) {
  if (external_bytes_) Napi::MemoryManagement::AdjustExternalMemory(env, -external_bytes_);
}

Napi::Object AddonTensor::wrap(Napi::Env env, const Tensor& tensor) {
  Tensor copy = tensor;
  auto* state = env.GetInstanceData<AddonState>();
  return state->tensor_ctor.New({Napi::External<Tensor>::New(env, &copy)});
}

AddonTensor* AddonTensor::unwrap(const Napi::Value& value, const char* what) {
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kTensorTag))
    fail(ErrorCode::InvalidArgument, std::string("Expected a Tensor for ") + what);
  AddonTensor* t = Unwrap(value.As<Napi::Object>());
  if (!t->tensor_.storage) fail(ErrorCode::InvalidArgument, std::string("Expected a live Tensor for ") + what + " but it was disposed");
  return t;
}

Napi::Value AddonTensor::dtype(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return Napi::String::New(info.Env(), dtype_name(tensor_.dtype)); });
}

Napi::Value AddonTensor::shape(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Array array = Napi::Array::New(info.Env(), tensor_.shape.size());
    for (size_t i = 0; i < tensor_.shape.size(); ++i)
      array.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(tensor_.shape[i])));
    return array;
  });
}

Napi::Value AddonTensor::byte_length(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), tensor_.storage ? static_cast<double>(tensor_.bytes()) : 0.0);
  });
}

Napi::Value AddonTensor::buffer(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return buffer_value(info.Env()); });
}

Napi::Value AddonTensor::buffer_value(Napi::Env env) {
  // One ArrayBuffer per tensor, held strongly for the wrapper's lifetime: wrapping the same
  // memory in a second external ArrayBuffer is not allowed by V8.
  if (!buffer_.IsEmpty()) return buffer_.Value();
  if (!tensor_.storage) return Napi::ArrayBuffer::New(env, 0);  // disposed: nothing to see
  // The ArrayBuffer keeps the storage alive through a heap-held shared_ptr freed by its finalizer.
  auto* keep = new std::shared_ptr<Storage>(tensor_.storage);
  buffer_hold_ = keep;
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
      env, tensor_.raw(), tensor_.bytes(),
      [](Napi::Env, void*, std::shared_ptr<Storage>* hold) { delete hold; }, keep);
  buffer_ = Napi::Persistent(ab);
  return ab;
}

}  // namespace tk
