// GELU (tanh form, GPT-2's gelu_new) on the GPU (ops/gelu.h): y = x·σ(2u), u = √(2/π)(x + 0.044715x³);
// and GeGLU, Gemma's gate a = gelu(g)·u.
#include "cuda_context.cuh"
#include "kernels.cuh"

namespace tk {
namespace cuda {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;

__device__ inline float sigma(float v) { return 1.0f / (1.0f + expf(-2.0f * kSqrt2OverPi * (v + kCubic * v * v * v))); }

__global__ void forward(const float* x, int64_t n, float* y) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = x[i] * sigma(x[i]);
}

__global__ void backward(const float* x, const float* dy, int64_t n, float* dx) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = x[i], s = sigma(v);
    dx[i] = dy[i] * (s + v * s * (1.0f - s) * 2.0f * kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v));
  }
}

__global__ void gated_forward(const float* g, const float* u, int64_t n, float* a) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    a[i] = g[i] * sigma(g[i]) * u[i];
}

__global__ void gated_backward(const float* g, const float* u, const float* da, int64_t n, float* dg, float* du) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = g[i], s = sigma(v), d = da[i];
    dg[i] = d * u[i] * (s + v * s * (1.0f - s) * 2.0f * kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v));
    du[i] = d * v * s;
  }
}

}  // namespace

void gelu_forward(const ExecContext& ex, const float* x, int64_t n, float* y) {
  CudaBackend& b = backend_of(ex);
  if (n <= 0) return;
  forward<<<grid_for(n, 256), 256, 0, b.stream()>>>(x, n, y);
  TK_LAUNCHED("gelu forward");
}

void gelu_backward(const ExecContext& ex, const float* x, const float* dy, int64_t n, float* dx) {
  CudaBackend& b = backend_of(ex);
  if (n <= 0) return;
  backward<<<grid_for(n, 256), 256, 0, b.stream()>>>(x, dy, n, dx);
  TK_LAUNCHED("gelu backward");
}

void geglu_forward(const ExecContext& ex, const float* g, const float* u, int64_t n, float* a) {
  CudaBackend& b = backend_of(ex);
  if (n <= 0) return;
  gated_forward<<<grid_for(n, 256), 256, 0, b.stream()>>>(g, u, n, a);
  TK_LAUNCHED("geglu forward");
}

void geglu_backward(const ExecContext& ex, const float* g, const float* u, const float* da, int64_t n, float* dg, float* du) {
  CudaBackend& b = backend_of(ex);
  if (n <= 0) return;
  gated_backward<<<grid_for(n, 256), 256, 0, b.stream()>>>(g, u, da, n, dg, du);
  TK_LAUNCHED("geglu backward");
}

}  // namespace cuda
}  // namespace tk
