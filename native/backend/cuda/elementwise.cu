// The small passes on the GPU (ops/elementwise.h): bias, its gradient (deterministic column
// sums), a += b, a *= s, soft-capping and its backward, and a strided block copy (cudaMemcpy2DAsync).
#include "column_sums.cuh"
#include "kernels.cuh"

namespace tk {
namespace cuda {
namespace {

__global__ void add_bias(float* y, const float* bias, int64_t rows, int64_t dim) {
  const int64_t n = rows * dim;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] += bias[i % dim];
}

__global__ void add_into(float* a, const float* b, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    a[i] += b[i];
}

__global__ void scale_by(float* a, float s, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    a[i] *= s;
}

__global__ void softcap_of(float* a, float cap, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    a[i] = cap * tanhf(a[i] / cap);
}

__global__ void softcap_back(const float* y, float* dy, float cap, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float t = y[i] / cap;
    dy[i] *= 1.0f - t * t;
  }
}

struct Rows {
  const float* dy;
  int64_t dim;
  __device__ double operator()(int64_t r, int64_t c) const { return dy[r * dim + c]; }
};

}  // namespace

void bias_forward(const ExecContext& x, float* y, const float* bias, int64_t rows, int64_t dim) {
  CudaBackend& b = backend_of(x);
  if (rows * dim <= 0) return;
  add_bias<<<grid_for(rows * dim, 256), 256, 0, b.stream()>>>(y, bias, rows, dim);
  TK_LAUNCHED("bias forward");
}

void bias_backward(const ExecContext& x, float* db, const float* dy, int64_t rows, int64_t dim) {
  column_sums(backend_of(x), kPartials, Rows{dy, dim}, rows, dim, db);
}

void add(const ExecContext& x, float* a, const float* b, int64_t n) {
  CudaBackend& be = backend_of(x);
  if (n <= 0) return;
  add_into<<<grid_for(n, 256), 256, 0, be.stream()>>>(a, b, n);
  TK_LAUNCHED("add");
}

void scale(const ExecContext& x, float* a, float s, int64_t n) {
  CudaBackend& be = backend_of(x);
  if (n <= 0) return;
  scale_by<<<grid_for(n, 256), 256, 0, be.stream()>>>(a, s, n);
  TK_LAUNCHED("scale");
}

void softcap(const ExecContext& x, float* a, float cap, int64_t n) {
  CudaBackend& be = backend_of(x);
  if (n <= 0) return;
  softcap_of<<<grid_for(n, 256), 256, 0, be.stream()>>>(a, cap, n);
  TK_LAUNCHED("softcap");
}

void softcap_backward(const ExecContext& x, const float* y, float* dy, float cap, int64_t n) {
  CudaBackend& be = backend_of(x);
  if (n <= 0) return;
  softcap_back<<<grid_for(n, 256), 256, 0, be.stream()>>>(y, dy, cap, n);
  TK_LAUNCHED("softcap backward");
}

void copy_block(const ExecContext& x, float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows, int64_t cols) {
  CudaBackend& b = backend_of(x);
  if (rows <= 0 || cols <= 0) return;
  TK_CUDA(cudaMemcpy2DAsync(dst, static_cast<size_t>(ldd) * 4, src, static_cast<size_t>(lds) * 4, static_cast<size_t>(cols) * 4,
                            static_cast<size_t>(rows), cudaMemcpyDeviceToDevice, b.stream()));
}

}  // namespace cuda
}  // namespace tk
