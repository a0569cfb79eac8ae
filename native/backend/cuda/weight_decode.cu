// Decoding a whole weight matrix on the GPU into a reused buffer (the frozen operand of a
// product, a weight that full fine-tuning copies into its parameters): one thread per element
// pair, row-major, fp32 or bf16.
#include "cuda_backend.h"
#include "cuda_context.cuh"
#include "kernels.cuh"
#include "weight_decode.cuh"

namespace tk {
namespace cuda {
namespace {

template <bool kBf16>
__global__ void decode(WeightView w, void* out) {
  const int64_t n = w.rows * w.cols;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n; e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = decode_at(w, e / w.cols, e % w.cols);
    if (kBf16) static_cast<__nv_bfloat16*>(out)[e] = __float2bfloat16_rn(v);
    else static_cast<float*>(out)[e] = v;
  }
}

}  // namespace

void decode_weights(const ExecContext& x, const WeightView& w, void* out, bool bf16) {
  CudaBackend& b = backend_of(x);
  const int64_t n = w.rows * w.cols;
  if (n <= 0) return;
  if (bf16) decode<true><<<grid_for(n, 256), 256, 0, b.stream()>>>(w, out);
  else decode<false><<<grid_for(n, 256), 256, 0, b.stream()>>>(w, out);
  TK_LAUNCHED("decode weights");
}

}  // namespace cuda

void cuda_decode_on_host(const WeightView& w, float* out) {
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t c = 0; c < w.cols; ++c) out[r * w.cols + c] = cuda::decode_at(w, r, c);
}

}  // namespace tk
