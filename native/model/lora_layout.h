// Laying out LoRA adapters in the flat parameter vector, shared by every model family: for each
// (layer, projection) that is on, A [r, in] then B [out, r] at consecutive offsets; A drawn as
// PEFT initializes it (uniform in ±1/sqrt(in), from the seed), B zero.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/random.h"
#include "llama.h"

namespace tk {

struct LoraSpec {
  int64_t r = 8;
  float scale = 1.0f;    // alpha / r, or alpha / sqrt(r) for rsLoRA
  float dropout = 0.0f;
  uint64_t seed = 0;
};

// dims(li, p) gives {in, out} of a projection, or {0, 0} where no adapter goes. Fills `slots`
// (resized to `layers`) and `params` (sized to the total, returned).
template <size_t P, class Dims>
int64_t layout_lora(std::vector<std::array<LoraSlot, P>>& slots, int64_t layers, const LoraSpec& spec, Dims&& dims,
                    std::vector<float>& params) {
  slots.assign(static_cast<size_t>(layers), {});
  int64_t offset = 0;
  for (int64_t li = 0; li < layers; ++li)
    for (size_t p = 0; p < P; ++p) {
      const auto [in, out] = dims(li, static_cast<int>(p));
      if (in == 0) continue;
      LoraSlot& s = slots[li][p];
      s.on = true, s.r = spec.r, s.scale = spec.scale, s.dropout = spec.dropout;
      s.a_offset = offset;
      offset += spec.r * in;
      s.b_offset = offset;
      offset += out * spec.r;
    }
  params.assign(static_cast<size_t>(offset), 0.0f);
  uint64_t seed = spec.seed;
  for (int64_t li = 0; li < layers; ++li)
    for (size_t p = 0; p < P; ++p) {
      const LoraSlot& s = slots[li][p];
      if (!s.on) continue;
      const int64_t in = dims(li, static_cast<int>(p)).first;
      fill_uniform(params.data() + s.a_offset, s.r * in, static_cast<float>(1.0 / std::sqrt(static_cast<double>(in))), seed);
    }
  return offset;
}

}  // namespace tk
