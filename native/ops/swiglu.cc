#include "swiglu.h"

#include <cmath>

namespace tk {

namespace {

// Runs fn(begin, end) over [0, n) in one chunk per thread (element-wise work: any split is exact).
template <class Fn>
void split(ThreadPool& pool, int64_t n, Fn&& fn) {
  const int tasks = n < 4096 ? 1 : pool.size();
  pool.run(tasks, [&](int t) { fn(n * t / tasks, n * (t + 1) / tasks); });
}

}  // namespace

void swiglu_forward(const float* g, const float* u, int64_t n, float* a, ThreadPool& pool) {
  split(pool, n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) a[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  });
}

void swiglu_backward(const float* g, const float* u, const float* da, int64_t n, float* dg, float* du, ThreadPool& pool) {
  split(pool, n, [&](int64_t lo, int64_t hi) { for (int64_t i = lo; i < hi; ++i) {
    const float sig = 1.0f / (1.0f + std::exp(-g[i]));
    const float silu = g[i] * sig;
    dg[i] = da[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
    du[i] = da[i] * silu;
  } });
}

}  // namespace tk
