// LayerNorm on the GPU (ops/layernorm.h, GPT-2): one block per row, mean and variance in fp64 as
// the CPU takes them; dw and db through the deterministic column sums.
#include "column_sums.cuh"
#include "device_math.cuh"
#include "kernels.cuh"

namespace tk {
namespace cuda {
namespace {

constexpr int kThreads = 256;

// Mean and 1/sqrt(variance + eps) of one row (two passes, fp64).
__device__ void row_stats(const float* x, int64_t dim, float eps, double* shared, double& mean, double& rstd) {
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) s += x[i];
  mean = block_sum(s, shared) / static_cast<double>(dim);
  double v = 0.0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) v += (x[i] - mean) * (x[i] - mean);
  rstd = 1.0 / sqrt(block_sum(v, shared) / static_cast<double>(dim) + eps);
}

__global__ void forward(const float* x, const float* w, const float* bias, int64_t dim, float eps, float* y) {
  __shared__ double shared[32];
  const int64_t r = blockIdx.x;
  const float* xr = x + r * dim;
  double mean, rstd;
  row_stats(xr, dim, eps, shared, mean, rstd);
  const float m = static_cast<float>(mean), inv = static_cast<float>(rstd);
  __syncthreads();
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) y[r * dim + i] = (xr[i] - m) * inv * w[i] + bias[i];
}

__global__ void backward(const float* x, const float* w, const float* dy, int64_t dim, float eps, float* dx, double* stats) {
  __shared__ double shared[32];
  const int64_t r = blockIdx.x;
  const float *xr = x + r * dim, *g = dy + r * dim;
  double mean, rstd;
  row_stats(xr, dim, eps, shared, mean, rstd);
  double md = 0.0, mdx = 0.0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const double dxhat = static_cast<double>(g[i]) * w[i];
    md += dxhat, mdx += dxhat * (xr[i] - mean) * rstd;
  }
  md = block_sum(md, shared) / static_cast<double>(dim);
  mdx = block_sum(mdx, shared) / static_cast<double>(dim);
  if (threadIdx.x == 0 && stats) stats[2 * r] = mean, stats[2 * r + 1] = rstd;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const double xhat = (xr[i] - mean) * rstd;
    dx[r * dim + i] = static_cast<float>(rstd * (static_cast<double>(g[i]) * w[i] - md - xhat * mdx));
  }
}

struct WeightGrad {  // dy·x̂
  const float *x, *dy;
  const double* stats;
  int64_t dim;
  __device__ double operator()(int64_t r, int64_t c) const {
    return dy[r * dim + c] * ((x[r * dim + c] - stats[2 * r]) * stats[2 * r + 1]);
  }
};

struct BiasGrad {  // dy
  const float* dy;
  int64_t dim;
  __device__ double operator()(int64_t r, int64_t c) const { return dy[r * dim + c]; }
};

}  // namespace

void layernorm_forward(const ExecContext& ex, const float* x, const float* w, const float* b, int64_t rows, int64_t dim,
                       float eps, float* y) {
  CudaBackend& be = backend_of(ex);
  if (rows <= 0) return;
  forward<<<static_cast<unsigned>(rows), kThreads, 0, be.stream()>>>(x, w, b, dim, eps, y);
  TK_LAUNCHED("layernorm forward");
}

void layernorm_backward(const ExecContext& ex, const float* x, const float* w, const float* dy, int64_t rows, int64_t dim,
                        float eps, float* dx, float* dw, float* db) {
  CudaBackend& be = backend_of(ex);
  if (rows <= 0) return;
  auto* stats = dw ? static_cast<double*>(be.scratch(kStats, static_cast<size_t>(2 * rows) * sizeof(double))) : nullptr;
  backward<<<static_cast<unsigned>(rows), kThreads, 0, be.stream()>>>(x, w, dy, dim, eps, dx, stats);
  TK_LAUNCHED("layernorm backward");
  if (dw) column_sums(be, kPartials, WeightGrad{x, dy, stats, dim}, rows, dim, dw);
  if (db) column_sums(be, kPartials, BiasGrad{dy, dim}, rows, dim, db);
}

}  // namespace cuda
}  // namespace tk
