#include "rope.h"

#include <cmath>
#include <vector>

namespace tk {

namespace {

void rotate(float* x, int64_t tokens, int64_t heads, int64_t head_dim, const int32_t* positions, float theta,
            float direction, bool interleaved) {
  const int64_t half = head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    inv_freq[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
  for (int64_t t = 0; t < tokens; ++t) {
    const float pos = static_cast<float>(positions[t]);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = pos * inv_freq[i];
      const float c = std::cos(angle), s = direction * std::sin(angle);
      for (int64_t h = 0; h < heads; ++h) {
        float* head = x + (t * heads + h) * head_dim;
        float* p0 = interleaved ? head + 2 * i : head + i;
        float* p1 = interleaved ? head + 2 * i + 1 : head + i + half;
        const float a = *p0, b = *p1;
        *p0 = a * c - b * s;
        *p1 = a * s + b * c;
      }
    }
  }
}

}  // namespace

void rope_forward(float* x, int64_t tokens, int64_t heads, int64_t head_dim, const int32_t* positions, float theta,
                  bool interleaved) {
  rotate(x, tokens, heads, head_dim, positions, theta, 1.0f, interleaved);
}

void rope_backward(float* dy, int64_t tokens, int64_t heads, int64_t head_dim, const int32_t* positions, float theta,
                   bool interleaved) {
  rotate(dy, tokens, heads, head_dim, positions, theta, -1.0f, interleaved);
}

}  // namespace tk
