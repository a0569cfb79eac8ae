// GEMM: C = alpha * (op(A)·op(B) + op(A2)·op(B2)) + beta * C, row-major, fp32 accumulation.
// Why one general routine: a linear layer needs three products — Y = X·Wᵀ (forward), dX = dY·W
// and dW = dYᵀ·X (backward) — which differ only in which operand is transposed; the packing step
// absorbs transposition, weight decoding (bf16, f16, NF4, GGUF blocks) and bf16 rounding, so one
// micro-kernel per ISA serves them all. The optional second product (A2, B2) shares the output
// pass: LoRA's low-rank term X·Aᵀ·Bᵀ rides along the frozen product as extra K columns.
#pragma once
#include <cstdint>

#include "../core/cpu_features.h"
#include "../core/thread_pool.h"
#include "weights.h"

namespace tk {

struct GemmOperand {
  const float* data = nullptr;  // dense fp32, row-major with row stride ld ...
  int64_t ld = 0;
  const WeightView* weights = nullptr;  // ... or a weight matrix in any format (B operands only)
  bool trans = false;
};

struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;  // op(A) is m x k, op(B) is k x n, C is m x n
  GemmOperand a, b;
  int64_t k2 = 0;               // optional second product: op(A2) is m x k2, op(B2) is k2 x n
  GemmOperand a2, b2;
  float* c = nullptr;
  int64_t ldc = 0;
  float alpha = 1.0f;
  float beta = 0.0f;  // 0: C is overwritten and never read (so garbage/NaN in C is ignored)
  bool bf16 = false;  // operands rounded to bf16 (round-to-nearest-even), fp32 accumulation
};

// Fast path: blocked, packed, multi-threaded; the micro-kernel is chosen by `isa` (bf16 products
// use vdpbf16ps where the ISA has AVX512_BF16, else the fp32 kernel on bf16-rounded operands).
void gemm(const GemmArgs& args, Isa isa, ThreadPool& pool);

// Plain reference: triple loop with fp64 accumulation over the same (decoded, rounded) operands,
// single-threaded. Every fast kernel is tested against an fp64 reference.
void gemm_reference(const GemmArgs& args);

}  // namespace tk
