#include "layernorm.h"

#include <cmath>

namespace tk {

void layernorm_forward(const float* x, const float* w, const float* b, int64_t rows, int64_t dim, float eps, float* y,
                       ThreadPool& pool) {
  const int tasks = static_cast<int>(rows < pool.size() ? rows : pool.size());
  pool.run(tasks, [&](int t) {
    for (int64_t r = rows * t / tasks; r < rows * (t + 1) / tasks; ++r) {
      const float* xr = x + r * dim;
      double mean = 0.0, var = 0.0;
      for (int64_t i = 0; i < dim; ++i) mean += xr[i];
      mean /= static_cast<double>(dim);
      for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
      const float inv = static_cast<float>(1.0 / std::sqrt(var / static_cast<double>(dim) + eps));
      const float m = static_cast<float>(mean);
      float* yr = y + r * dim;
      for (int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] - m) * inv * w[i] + b[i];
    }
  });
}

}  // namespace tk
