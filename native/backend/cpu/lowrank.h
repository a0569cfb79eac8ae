// LoRA's thin products, in one pass over the rows of a wide matrix Y [m, n]:
//   down: D [m, r]  = alpha_down · Y·Wᵀ          W [r, n]   (T = X·Aᵀ forward; dT = s·dY·B backward)
//   up:   G [r, n]  = beta·G + alpha_up · Sᵀ·Y   S [m, r]   (dA = dTᵀ·X; dB = s·dYᵀ·T, stored [n, r])
// Either or both. Why not the GEMM: with r of 8..64 these products are pure memory traffic — the
// GEMM would round all of Y to bf16 and pack it into panels (for a tile that is three quarters
// padding) to do a few flops per element; here Y is read once, as it is, and both products of
// the backward come out of the same pass. They run in fp32 whatever the step's precision.
// Rows are split across the pool; `up` sums each task's rows privately and adds the partial sums
// in task order, so results do not depend on scheduling (they may on the thread count).
#pragma once
#include <cstdint>

#include "cpu_features.h"
#include "thread_pool.h"

namespace tk {
namespace cpu {

struct LowRankPass {
  int64_t m = 0, n = 0, r = 0;
  const float* y = nullptr;  // [m, n], row stride ldy
  int64_t ldy = 0;
  const float* w = nullptr;  // down: W [r, n] row-major, or null for no `down`
  float* d = nullptr;        //       D [m, r]
  float alpha_down = 1.0f;
  const float* s = nullptr;  // up:   S [m, r], or null for no `up`
  float* g = nullptr;        //       G [r, n], or [n, r] when g_transposed
  bool g_transposed = false;
  float alpha_up = 1.0f;
  float beta = 0.0f;         // 0: G is overwritten and never read
};

void lowrank_pass(const LowRankPass& p, Isa isa, ThreadPool& pool);

// fp64 reference, single-threaded.
void lowrank_pass_reference(const LowRankPass& p);

// The row kernel behind lowrank_pass: rows [0, rows) of Y with W padded to rp (a multiple of 8)
// rows, S to rp columns; writes D (ld rp, unscaled) and adds Sᵀ·Y into gp [rp, n].
using LowRankRowsKernel = void (*)(const float* y, int64_t ldy, int64_t rows, int64_t n, int64_t rp, const float* w,
                                   float* d, const float* s, float* gp);
void lowrank_rows_scalar(const float* y, int64_t ldy, int64_t rows, int64_t n, int64_t rp, const float* w, float* d,
                         const float* s, float* gp);
void lowrank_rows_avx2(const float* y, int64_t ldy, int64_t rows, int64_t n, int64_t rp, const float* w, float* d,
                       const float* s, float* gp);
void lowrank_rows_avx512(const float* y, int64_t ldy, int64_t rows, int64_t n, int64_t rp, const float* w, float* d,
                         const float* s, float* gp);

}  // namespace cpu
}  // namespace tk
