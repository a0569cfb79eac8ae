// AVX-512 row kernel of lowrank_pass (backend/cpu/lowrank.h), over blocks of 32 rows of Y (which stay in
// L2 between the two products):
//   down: two rows at a time against eight rows of W — 16 accumulators, summed across lanes at
//         the end of the row;
//   up:   32 columns at a time for eight rows of G — 16 accumulators held over the whole block of
//         rows, so G is loaded and stored once per block instead of once per row.
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_* values.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "../lowrank.h"
#include "lowrank_blocks.h"

namespace tk {
namespace cpu {
namespace {

// The two kernels lowrank_row_blocks takes.
struct Kernels {
template <bool kTwo>
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma"))) static void down_pair(const float* y0, const float* y1,
                                                                                   int64_t n, int64_t rp, const float* w,
                                                                                   float* d0, float* d1, int64_t ldy) {
  for (int64_t j0 = 0; j0 < rp; j0 += 8) {
    __m512 a0[8], a1[8];
#pragma GCC unroll 8
    for (int jj = 0; jj < 8; ++jj) a0[jj] = a1[jj] = _mm512_setzero_ps();
    for (int64_t c = 0; c < n; c += 16) {
      const __mmask16 m = n - c >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n - c)) - 1);
      // Rows are short (a few KiB): fetch the next pair's while this one runs, rather than wait
      // for the hardware prefetcher to notice two new streams at every pair (half the time).
      if (j0 == 0) {
        _mm_prefetch(reinterpret_cast<const char*>(y0 + 2 * ldy + c), _MM_HINT_T0);
        if (kTwo) _mm_prefetch(reinterpret_cast<const char*>(y1 + 2 * ldy + c), _MM_HINT_T0);
      }
      const __m512 v0 = _mm512_maskz_loadu_ps(m, y0 + c);
      const __m512 v1 = kTwo ? _mm512_maskz_loadu_ps(m, y1 + c) : _mm512_setzero_ps();
#pragma GCC unroll 8
      for (int jj = 0; jj < 8; ++jj) {
        const __m512 wv = _mm512_maskz_loadu_ps(m, w + (j0 + jj) * n + c);
        a0[jj] = _mm512_fmadd_ps(v0, wv, a0[jj]);
        if (kTwo) a1[jj] = _mm512_fmadd_ps(v1, wv, a1[jj]);
      }
    }
#pragma GCC unroll 8
    for (int jj = 0; jj < 8; ++jj) {
      d0[j0 + jj] = _mm512_reduce_add_ps(a0[jj]);
      if (kTwo) d1[j0 + jj] = _mm512_reduce_add_ps(a1[jj]);
    }
  }
}

static __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff) : left <= 0 ? 0 : static_cast<__mmask16>((1u << left) - 1);
}

template <bool kPrefetch>
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma"))) static void up_block(const float* y, int64_t ldy,
                                                                                  int64_t rows, int64_t n, int64_t rp,
                                                                                  const float* s, float* gp) {
  for (int64_t j0 = 0; j0 < rp; j0 += 8)
    for (int64_t c = 0; c < n; c += 32) {
      const __mmask16 m0 = tail_mask(n - c), m1 = tail_mask(n - c - 16);
      __m512 g0[8], g1[8];
#pragma GCC unroll 8
      for (int jj = 0; jj < 8; ++jj) {
        g0[jj] = _mm512_maskz_loadu_ps(m0, gp + (j0 + jj) * n + c);
        g1[jj] = _mm512_maskz_loadu_ps(m1, gp + (j0 + jj) * n + c + 16);
      }
      for (int64_t i = 0; i < rows; ++i) {
        // The walk goes down a column strip, a different row each time, which the hardware
        // prefetcher does not follow: when the block is not already in cache (no `down` pass read
        // it), fetch this row's strip two strips ahead — waiting on it was 70% of the time.
        if (kPrefetch) {
          _mm_prefetch(reinterpret_cast<const char*>(y + i * ldy + c + 64), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(y + i * ldy + c + 80), _MM_HINT_T0);
        }
        const __m512 v0 = _mm512_maskz_loadu_ps(m0, y + i * ldy + c), v1 = _mm512_maskz_loadu_ps(m1, y + i * ldy + c + 16);
        const float* si = s + i * rp + j0;
#pragma GCC unroll 8
        for (int jj = 0; jj < 8; ++jj) {
          const __m512 b = _mm512_set1_ps(si[jj]);
          g0[jj] = _mm512_fmadd_ps(v0, b, g0[jj]);
          g1[jj] = _mm512_fmadd_ps(v1, b, g1[jj]);
        }
      }
#pragma GCC unroll 8
      for (int jj = 0; jj < 8; ++jj) {
        _mm512_mask_storeu_ps(gp + (j0 + jj) * n + c, m0, g0[jj]);
        _mm512_mask_storeu_ps(gp + (j0 + jj) * n + c + 16, m1, g1[jj]);
      }
    }
}

};

}  // namespace

void lowrank_rows_avx512(const float* y, int64_t ldy, int64_t count, int64_t n, int64_t rp, const float* w, float* d,
                       const float* s, float* gp) {
  lowrank_row_blocks<Kernels>(y, ldy, count, n, rp, w, d, s, gp);
}

}  // namespace cpu
}  // namespace tk
