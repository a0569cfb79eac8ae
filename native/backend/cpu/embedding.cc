// The CPU's embedding gather and gradient scatter (ops/embedding.h).
#include <algorithm>
#include <vector>

#include "kernels.h"

namespace tk {
namespace cpu {

void embedding_forward(const WeightView& table, const int32_t* ids, int64_t n, float* out, bool accumulate,
                       ThreadPool& pool) {
  const int64_t dim = table.cols;
  parallel_for(&pool, 0, n, (int64_t{1} << 14) / dim + 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> row(accumulate ? static_cast<size_t>(dim) : 0);
    for (int64_t t = t0; t < t1; ++t) {
      float* o = out + t * dim;
      if (!accumulate) {
        decode_weights(table, ids[t], 0, dim, o);
        continue;
      }
      decode_weights(table, ids[t], 0, dim, row.data());
      for (int64_t i = 0; i < dim; ++i) o[i] += row[i];
    }
  });
}

void embedding_backward(float* dtable, const int32_t* ids, const float* dx, int64_t n, int64_t dim, ThreadPool& pool) {
  const int tasks = n * dim < (1 << 16) ? 1 : std::min<int>(pool.size(), static_cast<int>((dim + 15) / 16));
  pool.run(tasks, [&](int t) {
    const int64_t j0 = dim * t / tasks, j1 = dim * (t + 1) / tasks;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = j0; j < j1; ++j) dtable[static_cast<int64_t>(ids[r]) * dim + j] += dx[r * dim + j];
  });
}

}  // namespace cpu
}  // namespace tk
