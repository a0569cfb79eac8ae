#include "../../ops/layernorm.h"

#include <vector>

#include <cmath>
#include "fp64_sum.h"
#include "kernels.h"

namespace tk {
namespace cpu {
namespace {

// Mean and 1/sqrt(variance + eps) of one row, accumulated in fp64.
void row_stats(const float* x, int64_t dim, float eps, double& mean, double& rstd) {
  const double m = sum_f64(dim, [&](int64_t i) { return static_cast<double>(x[i]); }) / static_cast<double>(dim);
  const double var = sum_f64(dim, [&](int64_t i) { return (x[i] - m) * (x[i] - m); });
  mean = m;
  rstd = 1.0 / std::sqrt(var / static_cast<double>(dim) + eps);
}

}  // namespace

void layernorm_forward(const float* x, const float* w, const float* b, int64_t rows, int64_t dim, float eps, float* y,
                       ThreadPool& pool) {
  const int tasks = static_cast<int>(rows < pool.size() ? rows : pool.size());
  pool.run(tasks, [&](int t) {
    for (int64_t r = rows * t / tasks; r < rows * (t + 1) / tasks; ++r) {
      const float* xr = x + r * dim;
      double mean = 0.0, rstd = 0.0;
      row_stats(xr, dim, eps, mean, rstd);
      const float inv = static_cast<float>(rstd);
      const float m = static_cast<float>(mean);
      float* yr = y + r * dim;
      for (int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] - m) * inv * w[i] + b[i];
    }
  });
}

void layernorm_backward(const float* x, const float* w, const float* dy, int64_t rows, int64_t dim, float eps, float* dx,
                        float* dw, float* db, ThreadPool& pool) {
  const int tasks = static_cast<int>(rows < pool.size() ? rows : pool.size());
  pool.run(tasks, [&](int t) {
    std::vector<double> dxhat(static_cast<size_t>(dim)), xhat(static_cast<size_t>(dim));
    for (int64_t r = rows * t / tasks; r < rows * (t + 1) / tasks; ++r) {
      const float* xr = x + r * dim;
      const float* g = dy + r * dim;
      double mean = 0.0, rstd = 0.0;
      row_stats(xr, dim, eps, mean, rstd);
      for (int64_t i = 0; i < dim; ++i) {
        xhat[i] = (xr[i] - mean) * rstd;
        dxhat[i] = static_cast<double>(g[i]) * w[i];
      }
      const double mean_d = sum_f64(dim, [&](int64_t i) { return dxhat[i]; }) / static_cast<double>(dim);
      const double mean_dx = sum_f64(dim, [&](int64_t i) { return dxhat[i] * xhat[i]; }) / static_cast<double>(dim);
      for (int64_t i = 0; i < dim; ++i) dx[r * dim + i] = static_cast<float>(rstd * (dxhat[i] - mean_d - xhat[i] * mean_dx));
    }
  });
  // Parameter gradients summed over rows in row order (deterministic).
  if (dw || db) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * dim;
      const float* g = dy + r * dim;
      double mean = 0.0, rstd = 0.0;
      row_stats(xr, dim, eps, mean, rstd);
      for (int64_t i = 0; i < dim; ++i) {
        if (dw) dw[i] += static_cast<float>(g[i] * (xr[i] - mean) * rstd);
        if (db) db[i] += g[i];
      }
    }
  }
}

}  // namespace cpu
}  // namespace tk
