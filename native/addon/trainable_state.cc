#include "trainable_state.h"

#include <algorithm>
#include <cmath>

#include "AddonTensor.h"
#include "options.h"

namespace tk {

Napi::Value flat_state_to_js(const Napi::CallbackInfo& info, size_t index, const FlatState& s) {
  std::vector<std::string> want;  // a full model's state is four model-sized vectors: copy only these
  if (info.Length() > index && info[index].IsArray()) {
    Napi::Array a = info[index].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) want.push_back(a.Get(i).ToString().Utf8Value());
  }
  Napi::Object out = Napi::Object::New(info.Env());
  auto put = [&](const char* name, const std::vector<float>& v) {
    if (!want.empty() && std::find(want.begin(), want.end(), name) == want.end()) return;
    Tensor t = Tensor::zeros(Dtype::F32, {static_cast<int64_t>(v.size())});
    std::copy(v.begin(), v.end(), t.data<float>());
    out.Set(name, AddonTensor::wrap(info.Env(), t));
  };
  put("params", s.params), put("grads", s.grads), put("m", s.m), put("v", s.v);
  out.Set("step", static_cast<double>(s.step));
  return out;
}

void put_slice(Napi::Env env, Napi::Object& out, const std::string& name, const std::vector<float>& src, int64_t at,
               std::vector<int64_t> shape) {
  Tensor t = Tensor::zeros(Dtype::F32, shape);
  std::copy(src.begin() + at, src.begin() + at + t.numel(), t.data<float>());
  out.Set(name, AddonTensor::wrap(env, t));
}

void flat_state_from_js(const Napi::Object& o, const FlatState& s) {
  const int64_t size = static_cast<int64_t>(s.params.size());
  const int64_t step = option_int(o, "step", 0, 0, int64_t{1} << 53);
  auto take = [&](const char* name, std::vector<float>& into, bool optional) {
    const Napi::Value v = o.Get(name);
    if (v.IsUndefined() && optional) return std::fill(into.begin(), into.end(), 0.0f);
    const Tensor& t = AddonTensor::unwrap(v, name)->tensor();
    check_arg(t.dtype == Dtype::F32 && t.numel() == size,
              std::string("Expected ") + name + " to be f32 [" + std::to_string(size) + "] but received " + t.shape_string());
    std::copy(t.data<float>(), t.data<float>() + size, into.begin());
  };
  take("params", s.params, false);
  take("m", s.m, false);
  take("v", s.v, false);
  take("grads", s.grads, true);
  s.step = step;
}

std::vector<float> lr_scales_option(const Napi::Object& o, int64_t size) {
  std::vector<float> scale_of;
  const Napi::Value sv = o.Get("lrScales");
  if (sv.IsUndefined()) return scale_of;
  check_arg(sv.IsArray(), "Expected lrScales to be an array of {offset, length, scale}");
  scale_of.assign(static_cast<size_t>(size), 1.0f);
  Napi::Array a = sv.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    check_arg(a.Get(i).IsObject(), "Expected lrScales to be an array of {offset, length, scale}");
    Napi::Object r = a.Get(i).As<Napi::Object>();
    const int64_t at = option_int(r, "offset", 0, 0, size), len = option_int(r, "length", 0, 0, size - at);
    const double k = option_number(r, "scale", 1.0);
    check_arg(k >= 0 && std::isfinite(k), "Expected lrScales[].scale >= 0");
    std::fill(scale_of.begin() + at, scale_of.begin() + at + len, static_cast<float>(k));
  }
  return scale_of;
}

double flat_optimizer_step(const FlatState& s, const AdamWConfig& c, double max_norm, const std::vector<float>& scales,
                           ThreadPool* pool) {
  const int64_t n = static_cast<int64_t>(s.params.size());
  const double norm = std::sqrt(sum_of_squares(s.grads.data(), n, pool));
  if (max_norm > 0) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0)
      for (float& g : s.grads) g = static_cast<float>(g * coef);
  }
  ++s.step;
  if (scales.empty()) {
    adamw_step(s.params.data(), s.grads.data(), s.m.data(), s.v.data(), n, c, s.step, pool);
  } else {  // one AdamW call per run of equal scale
    for (int64_t at = 0; at < n;) {
      int64_t end = at;
      while (end < n && scales[end] == scales[at]) ++end;
      AdamWConfig rc = c;
      rc.lr = c.lr * scales[at];
      adamw_step(s.params.data() + at, s.grads.data() + at, s.m.data() + at, s.v.data() + at, end - at, rc, s.step);
      at = end;
    }
  }
  std::fill(s.grads.begin(), s.grads.end(), 0.0f);
  return norm;
}

}  // namespace tk
