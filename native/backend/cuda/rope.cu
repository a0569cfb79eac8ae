// RoPE on the GPU (ops/rope.h): one thread per (token, head, rotated pair), in place. The table comes from
// the host; upload() copies it once per step, as every layer rotates at the same positions.
#include "cuda_context.cuh"
#include "kernels.cuh"

namespace tk {
namespace cuda {
namespace {

__global__ void rotate(float* x, int64_t tokens, int64_t heads, int64_t half, int64_t head_dim, bool interleaved, const float* cosv,
                       const float* sinv, float direction) {
  const int64_t n = tokens * heads * half;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n; e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e % half, th = e / half, t = th / heads;
    float* head = x + th * head_dim;
    const float c = cosv[t * half + i], s = direction * sinv[t * half + i];
    float* pa = interleaved ? head + 2 * i : head + i;
    float* pb = interleaved ? head + 2 * i + 1 : head + i + half;
    const float a = *pa, b = *pb;
    *pa = a * c - b * s;
    *pb = a * s + b * c;
  }
}

void run(const ExecContext& ex, float* x, int64_t heads, const RopeTable& t, float direction) {
  CudaBackend& b = backend_of(ex);
  const int64_t n = t.tokens * heads * t.half;
  if (n <= 0) return;
  const size_t bytes = static_cast<size_t>(t.tokens * t.half) * sizeof(float);
  const auto* c = static_cast<const float*>(b.upload(kRopeCos, t.cos.data(), bytes));
  const auto* s = static_cast<const float*>(b.upload(kRopeSin, t.sin.data(), bytes));
  rotate<<<grid_for(n, 256), 256, 0, b.stream()>>>(x, t.tokens, heads, t.half, t.head_dim, t.interleaved, c, s, direction);
  TK_LAUNCHED("rope");
}

}  // namespace

void rope_forward(const ExecContext& x, float* v, int64_t heads, const RopeTable& t) { run(x, v, heads, t, 1.0f); }
void rope_backward(const ExecContext& x, float* dy, int64_t heads, const RopeTable& t) { run(x, dy, heads, t, -1.0f); }

}  // namespace cuda
}  // namespace tk
