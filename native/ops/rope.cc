#include "rope.h"

#include <cmath>

namespace tk {

RopeTable rope_table(const int32_t* positions, int64_t tokens, int64_t head_dim, float theta, bool interleaved,
                     const float* freq_factors, int64_t rotary_dim, float attention_factor) {
  RopeTable t;
  const int64_t rot = rotary_dim > 0 ? rotary_dim : head_dim;
  t.tokens = tokens, t.half = rot / 2, t.head_dim = head_dim, t.interleaved = interleaved;
  std::vector<float> inv_freq(static_cast<size_t>(t.half));
  for (int64_t i = 0; i < t.half; ++i)
    inv_freq[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(rot)) / (freq_factors ? freq_factors[i] : 1.0f);
  t.cos.resize(static_cast<size_t>(tokens * t.half));
  t.sin.resize(t.cos.size());
  for (int64_t r = 0; r < tokens; ++r)
    for (int64_t i = 0; i < t.half; ++i) {
      const float angle = static_cast<float>(positions[r]) * inv_freq[i];
      t.cos[r * t.half + i] = std::cos(angle) * attention_factor;
      t.sin[r * t.half + i] = std::sin(angle) * attention_factor;
    }
  return t;
}

}  // namespace tk
