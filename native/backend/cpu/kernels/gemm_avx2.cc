// AVX2 + FMA micro-kernel, 6 x 16: twelve ymm accumulators, two B vectors, one broadcast —
// 15 of the 16 ymm registers, the classic shape for this register file.
#include <immintrin.h>

#include "gemm_kernels.h"

namespace tk {
namespace {

constexpr int MR = 6, NR = 16;

__attribute__((target("avx2,fma"))) void kernel_6x16(int64_t kc, const void* av, const void* bv, float* c,
                                                      int64_t ldc, float alpha, float beta) {
  const float* a = static_cast<const float*>(av);
  const float* b = static_cast<const float*>(bv);
#define TK_ROW_DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
  TK_ROW_DECL(0) TK_ROW_DECL(1) TK_ROW_DECL(2) TK_ROW_DECL(3) TK_ROW_DECL(4) TK_ROW_DECL(5)
#undef TK_ROW_DECL
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#define TK_ROW_FMA(i)                                 \
  {                                                   \
    const __m256 ai = _mm256_broadcast_ss(a + i);     \
    c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);       \
    c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);       \
  }
    TK_ROW_FMA(0) TK_ROW_FMA(1) TK_ROW_FMA(2) TK_ROW_FMA(3) TK_ROW_FMA(4) TK_ROW_FMA(5)
#undef TK_ROW_FMA
    a += MR;
    b += NR;
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#define TK_ROW_STORE(i)                                                                      \
  {                                                                                          \
    float* ci = c + i * ldc;                                                                 \
    __m256 r0 = _mm256_mul_ps(va, c##i##0), r1 = _mm256_mul_ps(va, c##i##1);                 \
    if (beta != 0.0f) {                                                                      \
      r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r0);                                     \
      r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8), r1);                                 \
    }                                                                                        \
    _mm256_storeu_ps(ci, r0);                                                                \
    _mm256_storeu_ps(ci + 8, r1);                                                            \
  }
  TK_ROW_STORE(0) TK_ROW_STORE(1) TK_ROW_STORE(2) TK_ROW_STORE(3) TK_ROW_STORE(4) TK_ROW_STORE(5)
#undef TK_ROW_STORE
}

}  // namespace

GemmKernel gemm_kernel_avx2() { return {MR, NR, 512, 192, 2048, kernel_6x16, gemm_transpose_pack_scalar, false, nullptr}; }

}  // namespace tk
