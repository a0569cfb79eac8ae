#include "gelu.h"

#include <cmath>

namespace tk {
namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;

template <class Fn>
void chunks(int64_t n, ThreadPool& pool, Fn&& fn) {
  const int tasks = static_cast<int>(n < 4096 ? 1 : pool.size());
  pool.run(tasks, [&](int t) { fn(n * t / tasks, n * (t + 1) / tasks); });
}
}  // namespace

float gelu_tanh(float x) { return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + kCubic * x * x * x))); }

void gelu_forward(const float* x, int64_t n, float* y, ThreadPool& pool) {
  chunks(n, pool, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) y[i] = gelu_tanh(x[i]);
  });
}

void gelu_backward(const float* x, const float* dy, int64_t n, float* dx, ThreadPool& pool) {
  chunks(n, pool, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const float v = x[i], th = std::tanh(kSqrt2OverPi * (v + kCubic * v * v * v));
      const float grad = 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v);
      dx[i] = dy[i] * grad;
    }
  });
}

}  // namespace tk
