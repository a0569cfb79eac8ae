// Cross-entropy on the GPU (ops/cross_entropy.h): one block per row — its max, Σ exp in fp64 (one
// fp32 exp per element, as the CPU), the loss, and the gradient written over the logits. The
// per-row losses come back to the host and are summed there in row order, as the CPU sums them.
#include <vector>

#include "device_math.cuh"
#include "cuda_context.cuh"
#include "kernels.cuh"

namespace tk {
namespace cuda {
namespace {

__global__ void rows_kernel(float* logits, const int32_t* labels, int64_t vocab, bool grad, double* loss) {
  __shared__ float fshared[32];
  __shared__ double dshared[32];
  const int64_t r = blockIdx.x;
  float* row = logits + r * vocab;
  const int32_t label = labels[r];
  if (label == kIgnoreIndex) {
    if (grad)
      for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) row[i] = 0.0f;
    if (threadIdx.x == 0) loss[r] = 0.0;
    return;
  }
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) m = fmaxf(m, row[i]);
  m = block_max(m, fshared);
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) s += expf(row[i] - m);
  s = block_sum(s, dshared);
  const float target = row[label];
  __syncthreads();  // every thread has read the target before the gradient overwrites it
  if (threadIdx.x == 0) loss[r] = static_cast<double>(m) + log(s) - target;
  if (!grad) return;
  const float k = static_cast<float>(1.0 / s);
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) row[i] = expf(row[i] - m) * k - (i == label ? 1.0f : 0.0f);
}

}  // namespace

CrossEntropyResult cross_entropy(const ExecContext& x, float* logits, const int32_t* labels, int64_t rows, int64_t vocab, bool grad) {
  CudaBackend& b = backend_of(x);
  CrossEntropyResult result;
  for (int64_t r = 0; r < rows; ++r) result.count += labels[r] != kIgnoreIndex;
  if (rows <= 0) return result;
  const auto* dl = static_cast<const int32_t*>(b.upload(kLabels, labels, static_cast<size_t>(rows) * 4));
  auto* loss = static_cast<double*>(b.scratch(kStats, static_cast<size_t>(rows) * sizeof(double)));
  rows_kernel<<<static_cast<unsigned>(rows), 512, 0, b.stream()>>>(logits, dl, vocab, grad, loss);
  TK_LAUNCHED("cross entropy");
  std::vector<double> row_loss(static_cast<size_t>(rows));
  b.copy_to_host(row_loss.data(), loss, row_loss.size() * sizeof(double));
  for (double l : row_loss) result.loss += l;
  if (result.count) result.loss /= static_cast<double>(result.count);
  return result;
}

}  // namespace cuda
}  // namespace tk
