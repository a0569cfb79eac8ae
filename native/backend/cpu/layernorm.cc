#include "../../ops/layernorm.h"

#include <vector>

#include <cmath>
#include "kernels.h"

namespace tk {
namespace cpu {
namespace {

// Mean and 1/sqrt(variance + eps) of one row, accumulated in fp64.
void row_stats(const float* x, int64_t dim, float eps, double& mean, double& rstd) {
  double m = 0.0, var = 0.0;
  for (int64_t i = 0; i < dim; ++i) m += x[i];
  m /= static_cast<double>(dim);
  for (int64_t i = 0; i < dim; ++i) var += (x[i] - m) * (x[i] - m);
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
      double mean_d = 0.0, mean_dx = 0.0;
      for (int64_t i = 0; i < dim; ++i) {
        xhat[i] = (xr[i] - mean) * rstd;
        dxhat[i] = static_cast<double>(g[i]) * w[i];
        mean_d += dxhat[i];
        mean_dx += dxhat[i] * xhat[i];
      }
      mean_d /= static_cast<double>(dim);
      mean_dx /= static_cast<double>(dim);
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
