#include "../../ops/rmsnorm.h"

#include <cmath>
#include <vector>

#include "fp64_sum.h"
#include "kernels.h"

namespace tk {
namespace cpu {

namespace {

float inverse_rms(const float* x, int64_t dim, float eps) {
  return static_cast<float>(1.0 / std::sqrt(dot_f64<false>(x, x, nullptr, dim) / static_cast<double>(dim) + eps));
}

}  // namespace

void rmsnorm_forward(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* y, ThreadPool& pool) {
  const int tasks = static_cast<int>(rows < pool.size() ? rows : pool.size());
  pool.run(tasks, [&](int t) {
    for (int64_t r = rows * t / tasks; r < rows * (t + 1) / tasks; ++r) {
      const float* xr = x + r * dim;
      const float inv = inverse_rms(xr, dim, eps);  // fp64 sum of squares: exact to fp32 rounding
      float* yr = y + r * dim;
      for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv * w[i];
    }
  });
}

void rmsnorm_backward(const float* x, const float* w, const float* dy, int64_t rows, int64_t dim, float eps, float* dx,
                      float* dw, ThreadPool& pool, const float* residual) {
  const int tasks = static_cast<int>(rows < pool.size() ? rows : pool.size());
  // dw is a sum over rows: each task sums its rows privately, then the partial sums are added in
  // task order, so the result does not depend on scheduling.
  std::vector<std::vector<double>> partial(dw ? tasks : 0, std::vector<double>(static_cast<size_t>(dim), 0.0));
  pool.run(tasks, [&](int t) {
    for (int64_t r = rows * t / tasks; r < rows * (t + 1) / tasks; ++r) {
      const float* xr = x + r * dim;
      const float* dyr = dy + r * dim;
      const float inv = inverse_rms(xr, dim, eps);
      const double dot = dot_f64<true>(dyr, w, xr, dim);  // Σ g ⊙ x
      const float c = static_cast<float>(dot / static_cast<double>(dim)) * inv * inv;
      float* dxr = dx + r * dim;
      if (residual) {
        const float* rr = residual + r * dim;
        for (int64_t i = 0; i < dim; ++i) dxr[i] = inv * (dyr[i] * w[i] - xr[i] * c) + rr[i];
      } else {
        for (int64_t i = 0; i < dim; ++i) dxr[i] = inv * (dyr[i] * w[i] - xr[i] * c);
      }
      if (dw)
        for (int64_t i = 0; i < dim; ++i) partial[t][i] += static_cast<double>(dyr[i]) * xr[i] * inv;
    }
  });
  if (dw)
    for (int t = 0; t < tasks; ++t)
      for (int64_t i = 0; i < dim; ++i) dw[i] += static_cast<float>(partial[t][i]);
}

}  // namespace cpu
}  // namespace tk
