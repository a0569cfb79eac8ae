#include "../../ops/swiglu.h"

#include <cmath>

#include "vexp.h"
#include "kernels.h"

namespace tk {
namespace cpu {

namespace {

// Runs fn(begin, end) over [0, n) in one chunk per thread (element-wise work: any split is exact).
template <class Fn>
void split(ThreadPool& pool, int64_t n, Fn&& fn) {
  const int tasks = n < 4096 ? 1 : pool.size();
  pool.run(tasks, [&](int t) { fn(n * t / tasks, n * (t + 1) / tasks); });
}

}  // namespace

// sigmoid(g) a block at a time (vectorized exp), then the element-wise rest.
constexpr int64_t kBlock = 1024;

void swiglu_forward(const float* g, const float* u, int64_t n, float* a, ThreadPool& pool, Isa isa) {
  split(pool, n, [&](int64_t lo, int64_t hi) {
    float sig[kBlock];
    for (int64_t b = lo; b < hi; b += kBlock) {
      const int64_t len = hi - b < kBlock ? hi - b : kBlock;
      sigmoid(g + b, len, sig, isa);
      for (int64_t i = 0; i < len; ++i) a[b + i] = g[b + i] * sig[i] * u[b + i];  // a may alias g
    }
  });
}

void swiglu_backward(const float* g, const float* u, const float* da, int64_t n, float* dg, float* du, ThreadPool& pool,
                     Isa isa) {
  split(pool, n, [&](int64_t lo, int64_t hi) {
    float sig[kBlock];
    for (int64_t b = lo; b < hi; b += kBlock) {
      const int64_t len = hi - b < kBlock ? hi - b : kBlock;
      sigmoid(g + b, len, sig, isa);
      for (int64_t j = 0; j < len; ++j) {
        const int64_t i = b + j;
        const float s = sig[j], silu = g[i] * s;
        dg[i] = da[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        du[i] = da[i] * silu;
      }
    }
  });
}

}  // namespace cpu
}  // namespace tk
