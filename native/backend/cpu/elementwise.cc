// The CPU's small passes (ops/elementwise.h), split across the pool once they are big enough to
// pay for the hand-off.
#include <algorithm>
#include <cstring>

#include "kernels.h"
#include "vexp.h"

namespace tk {
namespace cpu {

void bias_forward(float* y, const float* bias, int64_t rows, int64_t dim, ThreadPool& pool) {
  parallel_for(&pool, 0, rows, (int64_t{1} << 16) / dim + 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t i = 0; i < dim; ++i) y[r * dim + i] += bias[i];
  });
}

void bias_backward(float* db, const float* dy, int64_t rows, int64_t dim, ThreadPool& pool) {
  // By columns: each sums its rows in order, so the result does not depend on the thread count.
  const int tasks = rows * dim < (1 << 16) ? 1 : std::min<int>(pool.size(), static_cast<int>((dim + 15) / 16));
  pool.run(tasks, [&](int t) {
    const int64_t j0 = dim * t / tasks, j1 = dim * (t + 1) / tasks;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = j0; j < j1; ++j) db[j] += dy[r * dim + j];
  });
}

void add(float* a, const float* b, int64_t n, ThreadPool& pool) {
  parallel_for(&pool, 0, n, int64_t{1} << 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) a[i] += b[i];
  });
}

void scale(float* a, float s, int64_t n, ThreadPool& pool) {
  parallel_for(&pool, 0, n, int64_t{1} << 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) a[i] *= s;
  });
}

// tanh z = 2σ(2z) − 1 through the vectorized σ (libm's tanhf over a 262k vocabulary's logits
// costs more than the loss); its absolute error, cap·1e-7, is below a logit's own rounding.
void softcap(float* a, float cap, int64_t n, Isa isa, ThreadPool& pool) {
  parallel_for(&pool, 0, n, int64_t{1} << 16, [&](int64_t i0, int64_t i1) {
    float* x = a + i0;
    const int64_t m = i1 - i0;
    scale_in_place(x, m, 2.0f / cap, isa);
    sigmoid(x, m, x, isa);
    for (int64_t i = 0; i < m; ++i) x[i] = cap * (2.0f * x[i] - 1.0f);
  });
}

void softcap_backward(const float* y, float* dy, float cap, int64_t n, ThreadPool& pool) {
  const float inv = 1.0f / cap;
  parallel_for(&pool, 0, n, int64_t{1} << 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float t = y[i] * inv;
      dy[i] *= 1.0f - t * t;
    }
  });
}

void copy_block(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows, int64_t cols, ThreadPool& pool) {
  if (ldd == cols && lds == cols) {
    parallel_for(&pool, 0, rows * cols, int64_t{1} << 16, [&](int64_t i0, int64_t i1) {
      std::memcpy(dst + i0, src + i0, static_cast<size_t>(i1 - i0) * sizeof(float));
    });
    return;
  }
  parallel_for(&pool, 0, rows, (int64_t{1} << 16) / cols + 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::memcpy(dst + r * ldd, src + r * lds, static_cast<size_t>(cols) * sizeof(float));
  });
}

}  // namespace cpu
}  // namespace tk
