// fp32 GEMM: C = alpha * op(A) * op(B) + beta * C, row-major, op = identity or transpose.
// Why one general routine: a linear layer needs three products — Y = X·Wᵀ (forward),
// dX = dY·W and dW = dYᵀ·X (backward) — and these differ only in which operand is transposed.
// The transposition is absorbed by the packing step, so one micro-kernel per ISA serves all three.
#pragma once
#include <cstdint>

#include "../core/cpu_features.h"
#include "../core/thread_pool.h"

namespace tk {

struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;  // op(A) is m x k, op(B) is k x n, C is m x n
  const float* a = nullptr;
  int64_t lda = 0;  // row stride of A as stored
  bool trans_a = false;
  const float* b = nullptr;
  int64_t ldb = 0;
  bool trans_b = false;
  float* c = nullptr;
  int64_t ldc = 0;
  float alpha = 1.0f;
  float beta = 0.0f;  // 0: C is overwritten and never read (so garbage/NaN in C is ignored)
};

// Fast path: blocked, packed, multi-threaded; the micro-kernel is chosen by `isa`.
void gemm_f32(const GemmArgs& args, Isa isa, ThreadPool& pool);

// Plain reference: triple loop with fp64 accumulation, single-threaded. Every fast kernel is
// tested against an fp64 reference; this one is also exposed for debugging.
void gemm_f32_reference(const GemmArgs& args);

}  // namespace tk
