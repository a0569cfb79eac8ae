// AVX-512 micro-kernel, 14 x 32: 28 zmm accumulators, two B vectors and one broadcast operand
// (folded into the FMA as an embedded broadcast) — 31 of the 32 zmm registers. Per step it issues
// 28 FMAs against 16 loads, enough to keep two 512-bit FMA pipes busy.
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_* values.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "gemm_kernels.h"
#include "tile_store_avx512.h"
#include "transpose_avx512.h"

namespace tk {
namespace {

constexpr int MR = 14, NR = 32;

__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma,prfchw"))) void kernel_14x32(
    int64_t kc, const void* av, const void* bv, float* c, int64_t ldc, float alpha, float beta) {
  const float* a = static_cast<const float*>(av);
  const float* b = static_cast<const float*>(bv);
  // Claim C's lines for writing now (see the bf16 kernel).
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_ET0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_ET0);
  }
#define TK_ROW_DECL(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
  TK_ROW_DECL(0) TK_ROW_DECL(1) TK_ROW_DECL(2) TK_ROW_DECL(3) TK_ROW_DECL(4) TK_ROW_DECL(5) TK_ROW_DECL(6)
  TK_ROW_DECL(7) TK_ROW_DECL(8) TK_ROW_DECL(9) TK_ROW_DECL(10) TK_ROW_DECL(11) TK_ROW_DECL(12) TK_ROW_DECL(13)
#undef TK_ROW_DECL
  for (int64_t p = 0; p < kc; ++p) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * NR), _MM_HINT_T0);
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#define TK_ROW_FMA(i)                               \
  {                                                 \
    const __m512 ai = _mm512_set1_ps(a[i]);         \
    c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);     \
    c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);     \
  }
    TK_ROW_FMA(0) TK_ROW_FMA(1) TK_ROW_FMA(2) TK_ROW_FMA(3) TK_ROW_FMA(4) TK_ROW_FMA(5) TK_ROW_FMA(6)
    TK_ROW_FMA(7) TK_ROW_FMA(8) TK_ROW_FMA(9) TK_ROW_FMA(10) TK_ROW_FMA(11) TK_ROW_FMA(12) TK_ROW_FMA(13)
#undef TK_ROW_FMA
    a += MR;
    b += NR;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#define TK_ROW_STORE(i) store_row_avx512(c + i * ldc, c##i##0, c##i##1, va, vb, beta != 0.0f);
  TK_ROW_STORE(0) TK_ROW_STORE(1) TK_ROW_STORE(2) TK_ROW_STORE(3) TK_ROW_STORE(4) TK_ROW_STORE(5)
  TK_ROW_STORE(6) TK_ROW_STORE(7) TK_ROW_STORE(8) TK_ROW_STORE(9) TK_ROW_STORE(10) TK_ROW_STORE(11)
  TK_ROW_STORE(12) TK_ROW_STORE(13)
#undef TK_ROW_STORE
}

}  // namespace

__attribute__((target("avx512f"))) void gemm_transpose_pack_avx512(const float* src, int64_t ld, int64_t rows,
                                                                  int64_t kc, int width, float* dst) {
  for (int r0 = 0; r0 < width; r0 += 16) {
    const int group_rows = static_cast<int>(rows - r0 < 0 ? 0 : (rows - r0 > 16 ? 16 : rows - r0));
    const int group_width = width - r0 < 16 ? width - r0 : 16;
    const __mmask16 store_mask = static_cast<__mmask16>((1u << group_width) - 1);
    for (int64_t p0 = 0; p0 < kc; p0 += 16) {
      const int q = static_cast<int>(kc - p0 < 16 ? kc - p0 : 16);
      const __mmask16 load_mask = static_cast<__mmask16>((1u << q) - 1);
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = i < group_rows ? _mm512_maskz_loadu_ps(load_mask, src + (r0 + i) * ld + p0) : _mm512_setzero_ps();
      transpose_16x16_ps(r);
      for (int p = 0; p < q; ++p) _mm512_mask_storeu_ps(dst + (p0 + p) * width + r0, store_mask, r[p]);
    }
  }
}

// Blocking measured on Zen 5 (48 KiB L1, 1 MiB L2) with bench/ gemm: a deep KC amortizes the C tile
// updates, and MC x KC of A (~0.5 MiB) leaves room in L2 for the streaming B micro-panels.
GemmKernel gemm_kernel_avx512() { return {MR, NR, 768, 168, 1024, kernel_14x32, gemm_transpose_pack_avx512, false, nullptr}; }

}  // namespace tk
