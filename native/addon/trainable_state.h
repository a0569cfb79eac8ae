// The flat trainable state both model classes keep — parameters, gradients, AdamW moments and
// the step count — and the JS surface over it that they share: optimizerState() / set...,
// and the optimizer step itself (global-norm clipping, AdamW with optional per-range learning-rate
// scales, gradients zeroed). One contiguous vector is what the sharded optimizer will split.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../optim/adamw.h"

namespace tk {

struct FlatState {
  std::vector<float>& params;
  std::vector<float>& grads;
  std::vector<float>& m;
  std::vector<float>& v;
  int64_t& step;
};

// {params, grads, m, v: Tensor f32 [n] (copies), step}; `names` (info[index], an optional array)
// picks which vectors to copy.
Napi::Value flat_state_to_js(const Napi::CallbackInfo& info, size_t index, const FlatState& s);

// out[name] = a copy of src[at .. at + Π shape) as an f32 tensor of that shape (how the model
// classes hand out named views of the flat vector: adapters, heads, fully trained weights).
void put_slice(Napi::Env env, Napi::Object& out, const std::string& name, const std::vector<float>& src, int64_t at,
               std::vector<int64_t> shape);

// Restores from {params, grads?, m, v, step} (sizes must match; grads default to zero).
void flat_state_from_js(const Napi::Object& o, const FlatState& s);

// Per-parameter learning-rate scales from [{offset, length, scale}] (empty when absent).
std::vector<float> lr_scales_option(const Napi::Object& o, int64_t size);

// Clips the gradients to max_norm (0: no clipping), steps AdamW (scales: per parameter, or
// empty), zeroes the gradients. Returns the norm before clipping.
double flat_optimizer_step(const FlatState& s, const AdamWConfig& c, double max_norm, const std::vector<float>& scales,
                           ThreadPool* pool = nullptr);

}  // namespace tk
