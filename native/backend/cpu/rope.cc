#include "../../ops/rope.h"

#include <cmath>
#include "kernels.h"

namespace tk {
namespace cpu {

namespace {

void rotate(float* x, int64_t heads, const RopeTable& table, float direction, ThreadPool& pool) {
  const int64_t tokens = table.tokens, half = table.half, head_dim = table.head_dim;
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

}  // namespace cpu
}  // namespace tk
