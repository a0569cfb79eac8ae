// AdamW and the gradient's sums of squares on the GPU (optim/adamw.h). The step is element-wise,
// its constants computed on the host exactly as the CPU computes them; each chunk's Σ g² is one
// block's fp64 sum in a fixed order, so the norm does not change from run to run.
#include <cmath>
#include <vector>

#include "device_math.cuh"
#include "cuda_context.cuh"
#include "kernels.cuh"

namespace tk {
namespace cuda {
namespace {

struct Step {
  float beta1, beta2, eps, decay, step_size, bc2_sqrt, grad_scale;
};

__global__ void adamw(float* p, const float* g, float* m, float* v, int64_t n, Step s) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float gi = g[i] * s.grad_scale;
    float pi = p[i] * s.decay;
    const float mi = m[i] + (gi - m[i]) * (1.0f - s.beta1);
    const float vi = v[i] * s.beta2 + (1.0f - s.beta2) * gi * gi;
    const float denom = sqrtf(vi) / s.bc2_sqrt + s.eps;
    pi -= s.step_size * mi / denom;
    p[i] = pi, m[i] = mi, v[i] = vi;
  }
}

__global__ void chunk_squares(const float* g, int64_t n, int64_t chunk, double* out) {
  __shared__ double shared[32];
  const int64_t c = blockIdx.x, i0 = c * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
  double s = 0.0;
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) s += static_cast<double>(g[i]) * g[i];
  s = block_sum(s, shared);
  if (threadIdx.x == 0) out[c] = s;
}

}  // namespace

void adamw_step(const ExecContext& x, float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& c,
                int64_t t, float grad_scale) {
  CudaBackend& b = backend_of(x);
  if (n <= 0) return;
  const double bc1 = 1.0 - std::pow(static_cast<double>(c.beta1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(c.beta2), static_cast<double>(t));
  const Step s{c.beta1, c.beta2, c.eps, 1.0f - c.lr * c.weight_decay, static_cast<float>(c.lr / bc1),
               static_cast<float>(std::sqrt(bc2)), grad_scale};
  adamw<<<grid_for(n, 256), 256, 0, b.stream()>>>(p, g, m, v, n, s);
  TK_LAUNCHED("adamw");
}

void sum_squares_chunks(const ExecContext& x, const float* g, int64_t n, int64_t chunk, double* partials) {
  CudaBackend& b = backend_of(x);
  const int64_t chunks = (n + chunk - 1) / chunk;
  if (chunks <= 0) return;
  auto* out = static_cast<double*>(b.scratch(kStats, static_cast<size_t>(chunks) * sizeof(double)));
  chunk_squares<<<static_cast<unsigned>(chunks), 256, 0, b.stream()>>>(g, n, chunk, out);
  TK_LAUNCHED("sum of squares");
  b.copy_to_host(partials, out, static_cast<size_t>(chunks) * sizeof(double));
}

}  // namespace cuda
}  // namespace tk
