// The LoRA linear on the GPU (ops/lora_linear.h), as cuBLAS products: the low-rank term rides
// along the frozen product as its second product (C = X·Wᵀ + (s·T)·Bᵀ, one output pass), as on
// the CPU. The thin products (T, dT, dB, dA) round to bf16 only above rank 16, as the CPU's do,
// so both backends compute the same thing. Dropout's mask is the CPU's counter-based one
// (lora_dropout_factor), recomputed in the backward.
#include "cuda_context.cuh"
#include "kernels.cuh"

namespace tk {
namespace cuda {
namespace {

constexpr int64_t kMaxFp32Rank = 16;

__global__ void dropout(const float* x, int64_t n, uint64_t seed, float p, float* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = x[i] * lora_dropout_factor(seed, i, p);
}

__global__ void scaled(const float* t, int64_t n, float s, float* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = s * t[i];
}

__global__ void add_masked(float* dx, const float* low, int64_t n, uint64_t seed, float p) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dx[i] += low[i] * lora_dropout_factor(seed, i, p);
}

GemmOperand dense(const float* data, int64_t ld, bool trans) {
  GemmOperand o;
  o.data = data, o.ld = ld, o.trans = trans;
  return o;
}

GemmOperand frozen(const GemmOperand& w, bool trans) {
  GemmOperand o = w;
  o.trans = trans;
  return o;
}

void check(const LoraLinearArgs& g) {
  check_arg(g.dropout >= 0.0f && g.dropout < 1.0f, "Expected dropout in [0, 1)");
  check_arg(g.r >= 1, "Expected a LoRA rank >= 1");
}

// drop(X): X itself without dropout, else the masked copy in kLoraDrop.
const float* dropped(const ExecContext& x, CudaBackend& b, const LoraLinearArgs& g) {
  if (g.dropout <= 0.0f) return g.x;
  const int64_t n = g.m * g.in;
  auto* out = static_cast<float*>(b.scratch(kLoraDrop, static_cast<size_t>(n) * 4));
  dropout<<<grid_for(n, 256), 256, 0, b.stream()>>>(g.x, n, g.seed, g.dropout, out);
  TK_LAUNCHED("lora dropout");
  return out;
}

}  // namespace

void lora_linear_forward(const ExecContext& x, const LoraLinearArgs& g, float* y, float* t) {
  check(g);
  CudaBackend& b = backend_of(x);
  const bool thin_bf16 = g.bf16 && g.r > kMaxFp32Rank;
  GemmArgs ta;  // T = drop(X)·Aᵀ  [m, r]
  ta.m = g.m, ta.n = g.r, ta.k = g.in;
  ta.a = dense(dropped(x, b, g), g.in, false);
  ta.b = dense(g.a, g.in, true);
  ta.c = t, ta.ldc = g.r, ta.bf16 = thin_bf16;
  gemm(x, ta);
  const int64_t mr = g.m * g.r;
  auto* ts = static_cast<float*>(b.scratch(kLoraScaled, static_cast<size_t>(mr) * 4));
  scaled<<<grid_for(mr, 256), 256, 0, b.stream()>>>(t, mr, g.scale, ts);
  TK_LAUNCHED("lora scale");
  GemmArgs ya;  // Y (+)= [X | s·T]·[W | B]ᵀ
  ya.m = g.m, ya.n = g.out, ya.k = g.in;
  ya.a = dense(g.x, g.in, false);
  ya.b = frozen(g.w, !g.w_in_out);
  ya.k2 = g.r;
  ya.a2 = dense(ts, g.r, false);
  ya.b2 = dense(g.b, g.r, true);
  ya.c = y, ya.ldc = g.out, ya.beta = g.accumulate_y ? 1.0f : 0.0f, ya.bf16 = g.bf16;
  gemm(x, ya);
}

void lora_linear_backward(const ExecContext& x, const LoraLinearArgs& g, const float* dy, const float* t, float* dx, float* da,
                          float* db) {
  check(g);
  CudaBackend& b = backend_of(x);
  const bool thin_bf16 = g.bf16 && g.r > kMaxFp32Rank;
  const float beta = g.accumulate_grads ? 1.0f : 0.0f;
  auto* dt = static_cast<float*>(b.scratch(kLoraGrad, static_cast<size_t>(g.m * g.r) * 4));
  GemmArgs p;  // dT = s · dY·B  [m, r]
  p.m = g.m, p.n = g.r, p.k = g.out;
  p.a = dense(dy, g.out, false), p.b = dense(g.b, g.r, false);
  p.c = dt, p.ldc = g.r, p.alpha = g.scale, p.bf16 = thin_bf16;
  gemm(x, p);
  p = GemmArgs();  // dB (+)= s · dYᵀ·T  [out, r]
  p.m = g.out, p.n = g.r, p.k = g.m;
  p.a = dense(dy, g.out, true), p.b = dense(t, g.r, false);
  p.c = db, p.ldc = g.r, p.alpha = g.scale, p.beta = beta, p.bf16 = thin_bf16;
  gemm(x, p);
  p = GemmArgs();  // dA (+)= dTᵀ·drop(X)  [r, in]
  p.m = g.r, p.n = g.in, p.k = g.m;
  p.a = dense(dt, g.r, true), p.b = dense(dropped(x, b, g), g.in, false);
  p.c = da, p.ldc = g.in, p.beta = beta, p.bf16 = thin_bf16;
  gemm(x, p);
  if (!dx) return;
  GemmArgs dxa;  // dX (+)= dY·W (+ dT·A in the same pass without dropout)
  dxa.m = g.m, dxa.n = g.in, dxa.k = g.out;
  dxa.a = dense(dy, g.out, false);
  dxa.b = frozen(g.w, g.w_in_out);
  dxa.c = dx, dxa.ldc = g.in, dxa.beta = g.accumulate_dx ? 1.0f : 0.0f, dxa.bf16 = g.bf16;
  if (g.dropout == 0.0f) {
    dxa.k2 = g.r;
    dxa.a2 = dense(dt, g.r, false);
    dxa.b2 = dense(g.a, g.in, false);
    gemm(x, dxa);
    return;
  }
  gemm(x, dxa);
  // drop'(dT·A) = mask ⊙ (dT·A), into the dropout buffer (drop(X) was last read by dA's product).
  const int64_t n = g.m * g.in;
  auto* low = static_cast<float*>(b.scratch(kLoraDrop, static_cast<size_t>(n) * 4));
  GemmArgs la;
  la.m = g.m, la.n = g.in, la.k = g.r;
  la.a = dense(dt, g.r, false);
  la.b = dense(g.a, g.in, false);
  la.c = low, la.ldc = g.in, la.bf16 = g.bf16;
  gemm(x, la);
  add_masked<<<grid_for(n, 256), 256, 0, b.stream()>>>(dx, low, n, g.seed, g.dropout);
  TK_LAUNCHED("lora dropout backward");
}

}  // namespace cuda
}  // namespace tk
