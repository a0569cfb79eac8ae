#include "../../ops/gelu.h"

#include <algorithm>
#include <cmath>

#include "vexp.h"
#include "kernels.h"

namespace tk {
namespace cpu {
namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;
constexpr int64_t kBlock = 512;  // values per σ pass (on the stack)

// fn(s, x, i0, count) over blocks of [0, n) split across the pool, with s = σ(2u(x)) of the block.
template <class Fn>
void sigma_blocks(const float* x, int64_t n, ThreadPool& pool, Isa isa, Fn&& fn) {
  const int tasks = static_cast<int>(n < 4096 ? 1 : pool.size());
  pool.run(tasks, [&](int t) {
    float s[kBlock];
    for (int64_t i0 = n * t / tasks, end = n * (t + 1) / tasks; i0 < end; i0 += kBlock) {
      const int64_t count = std::min(kBlock, end - i0);
      for (int64_t j = 0; j < count; ++j) {
        const float v = x[i0 + j];
        s[j] = 2.0f * kSqrt2OverPi * (v + kCubic * v * v * v);
      }
      sigmoid(s, count, s, isa);
      fn(s, i0, count);
    }
  });
}

}  // namespace

void gelu_forward(const float* x, int64_t n, float* y, ThreadPool& pool, Isa isa) {
  sigma_blocks(x, n, pool, isa, [&](const float* s, int64_t i0, int64_t count) {
    for (int64_t j = 0; j < count; ++j) y[i0 + j] = x[i0 + j] * s[j];
  });
}

void gelu_backward(const float* x, const float* dy, int64_t n, float* dx, ThreadPool& pool, Isa isa) {
  sigma_blocks(x, n, pool, isa, [&](const float* s, int64_t i0, int64_t count) {
    for (int64_t j = 0; j < count; ++j) {
      const float v = x[i0 + j];
      const float grad = s[j] + v * s[j] * (1.0f - s[j]) * 2.0f * kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v);
      dx[i0 + j] = dy[i0 + j] * grad;
    }
  });
}

// GeGLU: the gate's σ(2u) once per block, then a = g·σ·u; the backward reuses it for both gradients.
void geglu_forward(const float* g, const float* u, int64_t n, float* a, ThreadPool& pool, Isa isa) {
  sigma_blocks(g, n, pool, isa, [&](const float* s, int64_t i0, int64_t count) {
    for (int64_t j = 0; j < count; ++j) a[i0 + j] = g[i0 + j] * s[j] * u[i0 + j];  // a may alias g
  });
}

void geglu_backward(const float* g, const float* u, const float* da, int64_t n, float* dg, float* du, ThreadPool& pool,
                    Isa isa) {
  sigma_blocks(g, n, pool, isa, [&](const float* s, int64_t i0, int64_t count) {
    for (int64_t j = 0; j < count; ++j) {
      const int64_t i = i0 + j;
      const float v = g[i];
      const float grad = s[j] + v * s[j] * (1.0f - s[j]) * 2.0f * kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v);
      dg[i] = da[i] * u[i] * grad;
      du[i] = da[i] * v * s[j];
    }
  });
}

}  // namespace cpu
}  // namespace tk
