// Reading option objects passed from TypeScript. The TS layer validates with zod first; these
// checks are the second line, so a direct call into the addon still cannot reach C++ with bad values.
#pragma once
#include <napi.h>

#include <cmath>
#include <string>

#include "../core/error.h"

namespace tk {

inline Napi::Object options_arg(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || info[index].IsUndefined()) return Napi::Object::New(info.Env());
  check_arg(info[index].IsObject(), "Expected an options object as argument " + std::to_string(index + 1));
  return info[index].As<Napi::Object>();
}

inline bool option_bool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  check_arg(v.IsBoolean(), std::string("Expected boolean for ") + key);
  return v.As<Napi::Boolean>().Value();
}

inline double option_number(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  check_arg(v.IsNumber() && std::isfinite(v.As<Napi::Number>().DoubleValue()),
            std::string("Expected finite number for ") + key);
  return v.As<Napi::Number>().DoubleValue();
}

inline int64_t option_int(const Napi::Object& o, const char* key, int64_t fallback, int64_t min, int64_t max) {
  double v = option_number(o, key, static_cast<double>(fallback));
  check_arg(std::floor(v) == v && v >= static_cast<double>(min) && v <= static_cast<double>(max),
            std::string("Expected integer in [") + std::to_string(min) + ", " + std::to_string(max) + "] for " +
                key + " but received " + std::to_string(v));
  return static_cast<int64_t>(v);
}

inline std::string option_string(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  check_arg(v.IsString(), std::string("Expected string for ") + key);
  return v.As<Napi::String>().Utf8Value();
}

// AdamW settings from {lr, beta1, beta2, eps, weightDecay}; defaults as given.
template <class Config>
Config adamw_options(const Napi::Object& o, double lr, double weight_decay) {
  Config c;
  c.lr = static_cast<float>(option_number(o, "lr", lr));
  c.beta1 = static_cast<float>(option_number(o, "beta1", 0.9));
  c.beta2 = static_cast<float>(option_number(o, "beta2", 0.999));
  c.eps = static_cast<float>(option_number(o, "eps", 1e-8));
  c.weight_decay = static_cast<float>(option_number(o, "weightDecay", weight_decay));
  return c;
}

}  // namespace tk
