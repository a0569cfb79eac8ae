#include "../../ops/rmsnorm.h"

#include <cmath>
#include <vector>

#include "fp64_sum.h"
#include "kernels.h"

namespace tk {
namespace cpu {

namespace {

// The rows' work is written once (inline templates) and compiled three times: for the baseline
// and, in the wrappers below, for AVX2 and AVX-512, which vectorize it. The fp64 sums run over 16
// interleaved lanes (two AVX-512 registers, four AVX2 ones; 8 lanes made one dependent chain of
// vector adds) and the wrappers keep fp-contract off (no FMA), so every ISA gives the same bits.
// Everything they call is always_inline, so it compiles under their target and contract setting.
constexpr int kLanes = 16;

inline __attribute__((always_inline)) float inverse_rms(const float* x, int64_t dim, float eps) {
  const double squares = sum_f64<kLanes>(dim, [&](int64_t i) __attribute__((always_inline)) { return static_cast<double>(x[i]) * x[i]; });
  return static_cast<float>(1.0 / std::sqrt(squares / static_cast<double>(dim) + eps));  // exact to fp32 rounding
}

inline __attribute__((always_inline)) void forward_rows(const float* x, const float* w, int64_t r0, int64_t r1,
                                                        int64_t dim, float eps, float* y) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * dim;
    const float inv = inverse_rms(xr, dim, eps);
    float* yr = y + r * dim;
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv * w[i];
  }
}

// dx of rows [r0, r1), and their dw terms added into dw_sum [dim] (fp64) when given.
inline __attribute__((always_inline)) void backward_rows(const float* x, const float* w, const float* dy,
                                                         const float* residual, int64_t r0, int64_t r1, int64_t dim,
                                                         float eps, float* dx, double* dw_sum) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * dim;
    const float* dyr = dy + r * dim;
    const float inv = inverse_rms(xr, dim, eps);
    const double dot = sum_f64<kLanes>(dim, [&](int64_t i) __attribute__((always_inline)) {
      return static_cast<double>(dyr[i]) * w[i] * static_cast<double>(xr[i]);
    });  // Σ g ⊙ x
    const float c = static_cast<float>(dot / static_cast<double>(dim)) * inv * inv;
    float* dxr = dx + r * dim;
    if (residual) {
      const float* rr = residual + r * dim;
      for (int64_t i = 0; i < dim; ++i) dxr[i] = inv * (dyr[i] * w[i] - xr[i] * c) + rr[i];
    } else {
      for (int64_t i = 0; i < dim; ++i) dxr[i] = inv * (dyr[i] * w[i] - xr[i] * c);
    }
    if (dw_sum)
      for (int64_t i = 0; i < dim; ++i) dw_sum[i] += static_cast<double>(dyr[i]) * xr[i] * inv;
  }
}

using ForwardRows = void (*)(const float*, const float*, int64_t, int64_t, int64_t, float, float*);
using BackwardRows = void (*)(const float*, const float*, const float*, const float*, int64_t, int64_t, int64_t, float,
                              float*, double*);
struct RowFns {
  ForwardRows forward;
  BackwardRows backward;
};

// One ISA's pair of wrappers; attrs: its target and fp-contract off.
#define TK_RMSNORM_ROWS(suffix, attrs)                                                                               \
  attrs void forward_##suffix(const float* x, const float* w, int64_t r0, int64_t r1, int64_t dim, float eps,        \
                              float* y) {                                                                          \
    forward_rows(x, w, r0, r1, dim, eps, y);                                                                       \
  }                                                                                                                \
  attrs void backward_##suffix(const float* x, const float* w, const float* dy, const float* residual, int64_t r0,  \
                               int64_t r1, int64_t dim, float eps, float* dx, double* dw_sum) {                    \
    backward_rows(x, w, dy, residual, r0, r1, dim, eps, dx, dw_sum);                                               \
  }
TK_RMSNORM_ROWS(baseline, __attribute__((optimize("fp-contract=off"))))
#if defined(__x86_64__) || defined(_M_X64)
TK_RMSNORM_ROWS(avx2, __attribute__((target("avx2"), optimize("fp-contract=off"))))
TK_RMSNORM_ROWS(avx512, __attribute__((target("avx512f"), optimize("fp-contract=off"))))
#endif

RowFns rows_for(Isa isa) {
#if defined(__x86_64__) || defined(_M_X64)
  if (isa >= Isa::Avx512) return {forward_avx512, backward_avx512};
  if (isa >= Isa::Avx2) return {forward_avx2, backward_avx2};
#endif
  (void)isa;
  return {forward_baseline, backward_baseline};
}

}  // namespace

void rmsnorm_forward(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* y, ThreadPool& pool,
                     Isa isa) {
  const ForwardRows run = rows_for(isa).forward;
  const int tasks = static_cast<int>(rows < pool.size() ? rows : pool.size());
  pool.run(tasks, [&](int t) { run(x, w, rows * t / tasks, rows * (t + 1) / tasks, dim, eps, y); });
}

void rmsnorm_backward(const float* x, const float* w, const float* dy, int64_t rows, int64_t dim, float eps, float* dx,
                      float* dw, ThreadPool& pool, Isa isa, const float* residual) {
  const BackwardRows run = rows_for(isa).backward;
  const int tasks = static_cast<int>(rows < pool.size() ? rows : pool.size());
  // dw is a sum over rows: each task sums its rows privately, then the partial sums are added in
  // task order, so the result does not depend on scheduling.
  std::vector<std::vector<double>> partial(dw ? tasks : 0, std::vector<double>(static_cast<size_t>(dim), 0.0));
  pool.run(tasks, [&](int t) {
    run(x, w, dy, residual, rows * t / tasks, rows * (t + 1) / tasks, dim, eps, dx, dw ? partial[t].data() : nullptr);
  });
  if (dw)
    for (int t = 0; t < tasks; ++t)
      for (int64_t i = 0; i < dim; ++i) dw[i] += static_cast<float>(partial[t][i]);
}

}  // namespace cpu
}  // namespace tk
