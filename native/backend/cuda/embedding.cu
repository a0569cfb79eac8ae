// The embedding gather and its gradient on the GPU (ops/embedding.h). The gather decodes each
// row from the table's format. The scatter is deterministic without atomics: the host (which has
// the ids) groups the tokens by id, and one block per distinct id adds its tokens' rows in token
// order, so repeated ids sum in the same order on every run, as on the CPU.
#include <algorithm>
#include <numeric>
#include <vector>

#include "cuda_context.cuh"
#include "kernels.cuh"
#include "weight_decode.cuh"

namespace tk {
namespace cuda {
namespace {

__global__ void gather(WeightView table, const int32_t* ids, int64_t n, float* out, bool accumulate) {
  const int64_t dim = table.cols, total = n * dim;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total; e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = decode_at(table, ids[e / dim], e % dim);
    out[e] = accumulate ? out[e] + v : v;
  }
}

// Block g adds the rows of tokens order[start[g] .. start[g + 1]) into dtable's row ids[order[start[g]]].
__global__ void scatter(float* dtable, const int32_t* ids, const int32_t* order, const int32_t* start, const float* dx, int64_t dim) {
  const int g = blockIdx.x;
  const int first = start[g], last = start[g + 1];
  float* row = dtable + static_cast<int64_t>(ids[order[first]]) * dim;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
    float s = row[j];
    for (int t = first; t < last; ++t) s += dx[static_cast<int64_t>(order[t]) * dim + j];
    row[j] = s;
  }
}

}  // namespace

void embedding_forward(const ExecContext& x, const WeightView& table, const int32_t* ids, int64_t n, float* out, bool accumulate) {
  CudaBackend& b = backend_of(x);
  if (n <= 0 || table.cols <= 0) return;
  const auto* di = static_cast<const int32_t*>(b.upload(kIds, ids, static_cast<size_t>(n) * 4));
  gather<<<grid_for(n * table.cols, 256), 256, 0, b.stream()>>>(table, di, n, out, accumulate);
  TK_LAUNCHED("embedding forward");
}

void embedding_backward(const ExecContext& x, float* dtable, const int32_t* ids, const float* dx, int64_t n, int64_t dim) {
  CudaBackend& b = backend_of(x);
  if (n <= 0 || dim <= 0) return;
  check_arg(n < (int64_t{1} << 31), "Expected fewer than 2^31 tokens");
  // order: the tokens sorted by id (stable: token order within an id); then each id's first index.
  std::vector<int32_t> order(static_cast<size_t>(n)), index;  // index = [order..., group starts..., end]
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t c) { return ids[a] < ids[c]; });
  index = order;
  int32_t groups = 0;
  for (int64_t t = 0; t < n; ++t)
    if (t == 0 || ids[order[t]] != ids[order[t - 1]]) index.push_back(static_cast<int32_t>(t)), ++groups;
  index.push_back(static_cast<int32_t>(n));
  const auto* di = static_cast<const int32_t*>(b.upload(kIds, ids, static_cast<size_t>(n) * 4));
  const auto* dindex = static_cast<const int32_t*>(b.upload(kIdRows, index.data(), index.size() * 4));
  scatter<<<static_cast<unsigned>(groups), 128, 0, b.stream()>>>(dtable, di, dindex, dindex + n, dx, dim);
  TK_LAUNCHED("embedding backward");
}

}  // namespace cuda
}  // namespace tk
