#include "rope.h"

#include <cmath>

namespace tk {

RopeTable rope_table(const int32_t* positions, int64_t tokens, int64_t head_dim, float theta, bool interleaved) {
  RopeTable t;
  t.tokens = tokens, t.half = head_dim / 2, t.interleaved = interleaved;
  std::vector<float> inv_freq(static_cast<size_t>(t.half));
  for (int64_t i = 0; i < t.half; ++i)
    inv_freq[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
  t.cos.resize(static_cast<size_t>(tokens * t.half));
  t.sin.resize(t.cos.size());
  for (int64_t r = 0; r < tokens; ++r)
    for (int64_t i = 0; i < t.half; ++i) {
      const float angle = static_cast<float>(positions[r]) * inv_freq[i];
      t.cos[r * t.half + i] = std::cos(angle);
      t.sin[r * t.half + i] = std::sin(angle);
    }
  return t;
}

namespace {

void rotate(float* x, int64_t heads, const RopeTable& table, float direction, ThreadPool& pool) {
  const int64_t tokens = table.tokens, half = table.half, head_dim = 2 * half;
  const int tasks = tokens * heads * head_dim < 16384 ? 1 : pool.size();
  pool.run(tasks, [&](int task) {
    for (int64_t r = tokens * task / tasks; r < tokens * (task + 1) / tasks; ++r) {
      const float* c = table.cos.data() + r * half;
      const float* s = table.sin.data() + r * half;
      for (int64_t h = 0; h < heads; ++h) {
        float* head = x + (r * heads + h) * head_dim;
        if (table.interleaved) {
          for (int64_t i = 0; i < half; ++i) {
            const float a = head[2 * i], b = head[2 * i + 1], si = direction * s[i];
            head[2 * i] = a * c[i] - b * si;
            head[2 * i + 1] = a * si + b * c[i];
          }
        } else {
          for (int64_t i = 0; i < half; ++i) {
            const float a = head[i], b = head[i + half], si = direction * s[i];
            head[i] = a * c[i] - b * si;
            head[i + half] = a * si + b * c[i];
          }
        }
      }
    }
  });
}

}  // namespace

void rope_forward(float* x, int64_t heads, const RopeTable& table, ThreadPool& pool) {
  rotate(x, heads, table, 1.0f, pool);
}

void rope_backward(float* dy, int64_t heads, const RopeTable& table, ThreadPool& pool) {
  rotate(dy, heads, table, -1.0f, pool);
}

}  // namespace tk
