// The options addLora() takes for every family: {r, alpha, rslora, dropout, seed} and the `layers`
// list; which projections `targets` names is each family's own (ModelFamily::lora_targets).
#pragma once
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

#include "../model/trainable.h"
#include "options.h"

namespace tk {

inline LoraSpec lora_spec_option(const Napi::Object& o) {
  LoraSpec spec;
  spec.r = option_int(o, "r", 8, 1, 4096);
  const double alpha = option_number(o, "alpha", 8.0);
  spec.scale = static_cast<float>(option_bool(o, "rslora", false) ? alpha / std::sqrt(static_cast<double>(spec.r)) : alpha / spec.r);
  const double dropout = option_number(o, "dropout", 0.0);
  check_arg(dropout >= 0.0 && dropout < 1.0, "Expected dropout in [0, 1) but received " + std::to_string(dropout));
  spec.dropout = static_cast<float>(dropout);
  spec.seed = static_cast<uint64_t>(option_int(o, "seed", 0, 0, int64_t{1} << 53));
  return spec;
}

// Which of `layers` layers get adapters (all when `layers` is absent).
inline std::vector<bool> layer_mask_option(const Napi::Object& o, int64_t layers) {
  const Napi::Value lv = o.Get("layers");
  if (lv.IsUndefined()) return std::vector<bool>(static_cast<size_t>(layers), true);
  check_arg(lv.IsArray(), "Expected an array of layer indices for layers");
  std::vector<bool> on(static_cast<size_t>(layers), false);
  Napi::Array a = lv.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    const double v = a.Get(i).IsNumber() ? a.Get(i).As<Napi::Number>().DoubleValue() : -1;
    check_arg(v >= 0 && v < layers && v == std::floor(v), "Expected layer indices in [0, " + std::to_string(layers) + ")");
    on[static_cast<size_t>(v)] = true;
  }
  return on;
}

}  // namespace tk
