// RMSNorm on the GPU (ops/rmsnorm.h): one block per row, the sums of squares and Σ dy·w·x in
// fp64 as the CPU sums them; dw through the deterministic column sums.
#include "column_sums.cuh"
#include "device_math.cuh"
#include "kernels.cuh"

namespace tk {
namespace cuda {
namespace {

constexpr int kThreads = 256;

__device__ float inverse_rms(const float* x, int64_t dim, float eps, double* shared) {
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) s += static_cast<double>(x[i]) * x[i];
  s = block_sum(s, shared);
  return static_cast<float>(1.0 / sqrt(s / static_cast<double>(dim) + eps));
}

__global__ void forward(const float* x, const float* w, int64_t dim, float eps, float* y) {
  __shared__ double shared[32];
  const int64_t r = blockIdx.x;
  const float* xr = x + r * dim;
  const float inv = inverse_rms(xr, dim, eps, shared);
  float* yr = y + r * dim;  // may be x itself (Qwen3's per-head norms run in place)
  __syncthreads();
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = xr[i] * inv * w[i];
}

__global__ void backward(const float* x, const float* w, const float* dy, int64_t dim, float eps, float* dx,
                         const float* residual, float* inv_out) {
  __shared__ double shared[32];
  const int64_t r = blockIdx.x;
  const float *xr = x + r * dim, *dyr = dy + r * dim;
  const float inv = inverse_rms(xr, dim, eps, shared);
  double dot = 0.0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dot += static_cast<double>(dyr[i]) * w[i] * xr[i];
  dot = block_sum(dot, shared);
  const float c = static_cast<float>(dot / static_cast<double>(dim)) * inv * inv;
  if (threadIdx.x == 0 && inv_out) inv_out[r] = inv;
  float* dxr = dx + r * dim;
  const float* rr = residual ? residual + r * dim : nullptr;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dxr[i] = inv * (dyr[i] * w[i] - xr[i] * c) + (rr ? rr[i] : 0.0f);
}

// dw's terms: dy·x·inv of each (row, column), as the CPU's partial sums take them.
struct WeightGrad {
  const float *x, *dy, *inv;
  int64_t dim;
  __device__ double operator()(int64_t r, int64_t c) const {
    return static_cast<double>(dy[r * dim + c]) * x[r * dim + c] * inv[r];
  }
};

}  // namespace

void rmsnorm_forward(const ExecContext& ex, const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* y) {
  CudaBackend& b = backend_of(ex);
  if (rows <= 0) return;
  forward<<<static_cast<unsigned>(rows), kThreads, 0, b.stream()>>>(x, w, dim, eps, y);
  TK_LAUNCHED("rmsnorm forward");
}

void rmsnorm_backward(const ExecContext& ex, const float* x, const float* w, const float* dy, int64_t rows, int64_t dim,
                      float eps, float* dx, float* dw, const float* residual) {
  CudaBackend& b = backend_of(ex);
  if (rows <= 0) return;
  auto* inv = dw ? static_cast<float*>(b.scratch(kStats, static_cast<size_t>(rows) * sizeof(float))) : nullptr;
  backward<<<static_cast<unsigned>(rows), kThreads, 0, b.stream()>>>(x, w, dy, dim, eps, dx, residual, inv);
  TK_LAUNCHED("rmsnorm backward");
  if (dw) column_sums(b, kPartials, WeightGrad{x, dy, inv, dim}, rows, dim, dw);
}

}  // namespace cuda
}  // namespace tk
