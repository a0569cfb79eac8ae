// SwiGLU on the GPU (ops/swiglu.h): a = silu(g)·u, element-wise (a may be g itself).
#include "cuda_context.cuh"
#include "kernels.cuh"

namespace tk {
namespace cuda {
namespace {

__device__ inline float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

__global__ void forward(const float* g, const float* u, int64_t n, float* a) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    a[i] = g[i] * sigmoid(g[i]) * u[i];
}

__global__ void backward(const float* g, const float* u, const float* da, int64_t n, float* dg, float* du) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float s = sigmoid(g[i]), gi = g[i], ui = u[i], d = da[i];
    dg[i] = d * ui * s * (1.0f + gi * (1.0f - s));
    du[i] = d * gi * s;
  }
}

}  // namespace

void swiglu_forward(const ExecContext& x, const float* g, const float* u, int64_t n, float* a) {
  CudaBackend& b = backend_of(x);
  if (n <= 0) return;
  forward<<<grid_for(n, 256), 256, 0, b.stream()>>>(g, u, n, a);
  TK_LAUNCHED("swiglu forward");
}

void swiglu_backward(const ExecContext& x, const float* g, const float* u, const float* da, int64_t n, float* dg, float* du) {
  CudaBackend& b = backend_of(x);
  if (n <= 0) return;
  backward<<<grid_for(n, 256), 256, 0, b.stream()>>>(g, u, da, n, dg, du);
  TK_LAUNCHED("swiglu backward");
}

}  // namespace cuda
}  // namespace tk
