// AVX2 + FMA micro-kernel, 6 x 16: twelve ymm accumulators, two B vectors, one broadcast —
// 15 of the 16 ymm registers, the classic shape for this register file.
#include <immintrin.h>

#include "avx2_lanes.h"
#include "gemm_kernels.h"
#include "tile_store_avx2.h"
#include "transpose_avx2.h"

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
#define TK_ROW_STORE(i) store_row_avx2(c + i * ldc, c##i##0, c##i##1, va, vb, beta != 0.0f);
  TK_ROW_STORE(0) TK_ROW_STORE(1) TK_ROW_STORE(2) TK_ROW_STORE(3) TK_ROW_STORE(4) TK_ROW_STORE(5)
#undef TK_ROW_STORE
}

}  // namespace

// gemm_transpose_pack through 8 x 8 register transposes. Why: the scalar copy was 7% of the bf16
// LoRA step at SmolLM2-135M x 256 on a Zen 3 (perf), a strided store per element. Stores are
// exact-width (the A panels are 6 wide): a masked store is slow on AMD cores, and a full
// 8-wide one would write past the panel.
__attribute__((target("avx2"))) void gemm_transpose_pack_avx2(const float* src, int64_t ld, int64_t rows, int64_t kc,
                                                             int width, float* dst) {
  for (int r0 = 0; r0 < width; r0 += 8) {
    const int group_rows = static_cast<int>(rows - r0 < 0 ? 0 : (rows - r0 > 8 ? 8 : rows - r0));
    const int group_width = width - r0 < 8 ? width - r0 : 8;
    for (int64_t p0 = 0; p0 < kc; p0 += 8) {
      const int q = static_cast<int>(kc - p0 < 8 ? kc - p0 : 8);
      const __m256i load_mask = avx2_first_lanes(q);
      __m256 r[8];
      for (int i = 0; i < 8; ++i) {
        const float* at = src + (r0 + i) * ld + p0;
        r[i] = i >= group_rows ? _mm256_setzero_ps() : q == 8 ? _mm256_loadu_ps(at) : _mm256_maskload_ps(at, load_mask);
      }
      transpose_8x8_ps(r);
      for (int p = 0; p < q; ++p) {
        float* out = dst + (p0 + p) * width + r0;
        if (group_width == 8) {
          _mm256_storeu_ps(out, r[p]);
        } else {
          alignas(32) float lane[8];
          _mm256_store_ps(lane, r[p]);
          for (int i = 0; i < group_width; ++i) out[i] = lane[i];
        }
      }
    }
  }
}

GemmKernel gemm_kernel_avx2() { return {MR, NR, 512, 192, 2048, kernel_6x16, gemm_transpose_pack_avx2, false, nullptr}; }

}  // namespace tk
