// The GEMM's plain reference (ops/gemm.h): a triple loop with fp64 accumulation over the same
// decoded, rounded operands. The fast kernels live in backend/cpu/gemm.cc.
#include "gemm.h"

#include "../backend/cpu/kernels.h"
#include "../core/float16.h"

namespace tk {

namespace {

// The element of an operand at non-K index r and K index p — op(A)[r, p] or op(B)[p, r] —
// decoded (and bf16-rounded in bf16 mode), for the reference.
float operand_at(const GemmOperand& x, bool b_side, int64_t r, int64_t p, bool bf16) {
  float v;
  const bool k_major = b_side ? !x.trans : x.trans;  // stored with K as the row index
  const int64_t row = k_major ? p : r, col = k_major ? r : p;
  if (x.weights)
    cpu::decode_weights(*x.weights, row, col, 1, &v);
  else
    v = x.data[row * x.ld + col];
  return bf16 ? round_to_bf16(v) : v;
}

}  // namespace

void gemm_reference(const GemmArgs& g) {
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < g.k; ++p)
        sum += static_cast<double>(operand_at(g.a, false, i, p, g.bf16)) * operand_at(g.b, true, j, p, g.bf16);
      for (int64_t p = 0; p < g.k2; ++p)
        sum += static_cast<double>(operand_at(g.a2, false, i, p, g.bf16)) * operand_at(g.b2, true, j, p, g.bf16);
      float& c = g.c[i * g.ldc + j];
      c = static_cast<float>(g.alpha * sum + (g.beta == 0.0f ? 0.0 : static_cast<double>(g.beta) * c));
    }
}

}  // namespace tk
