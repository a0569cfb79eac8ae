// AVX512_BF16 micro-kernel, 14 x 32 over bf16 pairs: each vdpbf16ps multiplies 16 lanes of two
// bf16 products and adds both to fp32 accumulators — twice the flops of an fp32 FMA per
// instruction. Same register plan as the fp32 kernel: 28 accumulators, two B vectors, a broadcast.
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_* values.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "gemm_kernels.h"
#include "tile_store_avx512.h"
#include "transpose_avx512.h"

namespace tk {
namespace {

constexpr int MR = 14, NR = 32;

__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,prfchw"))) void kernel_bf16_14x32(
    int64_t kc, const void* av, const void* bv, float* c, int64_t ldc, float alpha, float beta) {
  const uint16_t* a = static_cast<const uint16_t*>(av);
  const uint16_t* b = static_cast<const uint16_t*>(bv);
  const int64_t pairs = (kc + 1) / 2;
  // Claim C's lines for writing now: a step's outputs are usually not in cache, and their
  // read-for-ownership would otherwise stall the stores at the end of the tile (PREFETCHW; every
  // AVX-512 CPU has it). SmolLM2 bf16 step: 4% faster.
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_ET0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_ET0);
  }
#define TK_ROW_DECL(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
  TK_ROW_DECL(0) TK_ROW_DECL(1) TK_ROW_DECL(2) TK_ROW_DECL(3) TK_ROW_DECL(4) TK_ROW_DECL(5) TK_ROW_DECL(6)
  TK_ROW_DECL(7) TK_ROW_DECL(8) TK_ROW_DECL(9) TK_ROW_DECL(10) TK_ROW_DECL(11) TK_ROW_DECL(12) TK_ROW_DECL(13)
#undef TK_ROW_DECL
  for (int64_t q = 0; q < pairs; ++q) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * 2 * NR), _MM_HINT_T0);
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 32);
#define TK_ROW_DOT(i)                                                     \
  {                                                                       \
    int32_t pair;                                                         \
    std::memcpy(&pair, a + 2 * i, 4);                                     \
    const __m512bh ai = (__m512bh)_mm512_set1_epi32(pair);                \
    c##i##0 = _mm512_dpbf16_ps(c##i##0, ai, b0);                          \
    c##i##1 = _mm512_dpbf16_ps(c##i##1, ai, b1);                          \
  }
    TK_ROW_DOT(0) TK_ROW_DOT(1) TK_ROW_DOT(2) TK_ROW_DOT(3) TK_ROW_DOT(4) TK_ROW_DOT(5) TK_ROW_DOT(6)
    TK_ROW_DOT(7) TK_ROW_DOT(8) TK_ROW_DOT(9) TK_ROW_DOT(10) TK_ROW_DOT(11) TK_ROW_DOT(12) TK_ROW_DOT(13)
#undef TK_ROW_DOT
    a += 2 * MR;
    b += 2 * NR;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#define TK_ROW_STORE(i) store_row_avx512(c + i * ldc, c##i##0, c##i##1, va, vb, beta != 0.0f);
  TK_ROW_STORE(0) TK_ROW_STORE(1) TK_ROW_STORE(2) TK_ROW_STORE(3) TK_ROW_STORE(4) TK_ROW_STORE(5)
  TK_ROW_STORE(6) TK_ROW_STORE(7) TK_ROW_STORE(8) TK_ROW_STORE(9) TK_ROW_STORE(10) TK_ROW_STORE(11)
  TK_ROW_STORE(12) TK_ROW_STORE(13)
#undef TK_ROW_STORE
}

// vcvtne2ps2bf16 rounds to nearest even like the scalar path (it flushes fp32 denormals to zero).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void pair_pack(const float* src, int64_t panels,
                                                                              int width, int64_t kc, uint16_t* dst) {
  const int64_t pairs = (kc + 1) / 2;
  // Interleave: output 2i <- first row's lane i, 2i + 1 <- second row's lane i.
  alignas(64) uint16_t order[32];
  for (int i = 0; i < 16; ++i) order[2 * i] = static_cast<uint16_t>(i), order[2 * i + 1] = static_cast<uint16_t>(16 + i);
  const __m512i idx = _mm512_load_si512(order);
  for (int64_t pnl = 0; pnl < panels; ++pnl) {
    const float* in = src + pnl * width * kc;
    uint16_t* out = dst + pnl * width * pairs * 2;
    for (int64_t q = 0; q < pairs; ++q) {
      const float* r0 = in + 2 * q * width;
      const bool has_second = 2 * q + 1 < kc;
      for (int j = 0; j < width; j += 16) {
        const int n = width - j < 16 ? width - j : 16;
        const __mmask16 m = static_cast<__mmask16>((1u << n) - 1);
        const __m512 x0 = _mm512_maskz_loadu_ps(m, r0 + j);
        const __m512 x1 = has_second ? _mm512_maskz_loadu_ps(m, r0 + width + j) : _mm512_setzero_ps();
        const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
        const __m512i pairs_out = _mm512_permutexvar_epi16(idx, both);
        _mm512_mask_storeu_epi16(out + (q * width + j) * 2, static_cast<__mmask32>((1ull << (2 * n)) - 1), pairs_out);
      }
    }
  }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void pair_pack_kmajor(
    const float* src, int64_t ld, int n, int width, int64_t kc, uint16_t* dst) {
  alignas(64) uint16_t order[32];
  for (int i = 0; i < 16; ++i) order[2 * i] = static_cast<uint16_t>(i), order[2 * i + 1] = static_cast<uint16_t>(16 + i);
  const __m512i idx = _mm512_load_si512(order);
  const int64_t pairs = (kc + 1) / 2;
  for (int64_t q = 0; q < pairs; ++q) {
    const float* r0 = src + 2 * q * ld;
    const bool has_second = 2 * q + 1 < kc;
    for (int j = 0; j < width; j += 16) {
      const int valid = n - j < 0 ? 0 : (n - j > 16 ? 16 : n - j);
      const int lanes = width - j < 16 ? width - j : 16;
      const __mmask16 m = static_cast<__mmask16>((1u << valid) - 1);
      const __m512 x0 = _mm512_maskz_loadu_ps(m, r0 + j);
      const __m512 x1 = has_second ? _mm512_maskz_loadu_ps(m, r0 + ld + j) : _mm512_setzero_ps();
      const __m512i out = _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
      _mm512_mask_storeu_epi16(dst + (q * width + j) * 2, static_cast<__mmask32>((1ull << (2 * lanes)) - 1), out);
    }
  }
}

// Each row's consecutive pair (2q, 2q+1) is one 32-bit bf16 pair, so after converting rows to bf16
// the panel is a 16 x 16 transpose of 32-bit lanes, done with the fp32 transpose.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void pair_pack_transpose(
    const float* src, int64_t ld, int n, int width, int64_t kc, uint16_t* dst) {
  const int64_t pairs = (kc + 1) / 2;
  for (int r0 = 0; r0 < width; r0 += 16) {
    const int rows = n - r0 < 0 ? 0 : (n - r0 > 16 ? 16 : n - r0);
    const int lanes = width - r0 < 16 ? width - r0 : 16;
    const __mmask16 store_mask = static_cast<__mmask16>((1u << lanes) - 1);
    for (int64_t q0 = 0; q0 < pairs; q0 += 16) {
      const int qn = static_cast<int>(pairs - q0 < 16 ? pairs - q0 : 16);
      const int64_t p0 = 2 * q0;
      const int64_t left = kc - p0;  // fp32 values left in each row (up to 32 used)
      const __mmask16 m_lo = static_cast<__mmask16>(left >= 16 ? 0xffff : (1u << left) - 1);
      const __mmask16 m_hi = static_cast<__mmask16>(left >= 32 ? 0xffff : left <= 16 ? 0 : (1u << (left - 16)) - 1);
      __m512 r[16];
      for (int i = 0; i < 16; ++i) {
        if (i < rows) {
          const float* row = src + (r0 + i) * ld + p0;
          // Sixteen rows advance side by side, more streams than the hardware prefetcher follows.
          _mm_prefetch(reinterpret_cast<const char*>(row + 64), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(row + 80), _MM_HINT_T0);
          const __m512 lo = _mm512_maskz_loadu_ps(m_lo, row), hi = _mm512_maskz_loadu_ps(m_hi, row + 16);
          r[i] = _mm512_castsi512_ps((__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        } else {
          r[i] = _mm512_setzero_ps();
        }
      }
      transpose_16x16_ps(r);
      for (int q = 0; q < qn; ++q) _mm512_mask_storeu_ps(reinterpret_cast<float*>(dst + ((q0 + q) * width + r0) * 2), store_mask, r[q]);
    }
  }
}

}  // namespace

// KC counts bf16 elements (pairs = KC / 2); panels are half the bytes of fp32 ones. A deep KC
// (whole K up to 2048) saves re-reading C between K blocks, which costs more than the B panel
// spilling from L1 to L2 (measured with bench/ gemm on Zen 5).
GemmKernel gemm_kernel_avx512_bf16() { return {MR, NR, 2048, 84, 1024, kernel_bf16_14x32, gemm_transpose_pack_avx512, true, pair_pack, pair_pack_kmajor, pair_pack_transpose}; }

}  // namespace tk
