// AVX2 + FMA row kernel of lowrank_pass (backend/cpu/lowrank.h), the AVX-512 kernel's shape cut to
// sixteen ymm registers, over blocks of 32 rows of Y (which stay in L2 between the two products):
//   down: two rows at a time against four rows of W — 8 accumulators, 2 Y and 1 W vector;
//   up:   16 columns at a time for four rows of G — 8 accumulators held over the whole block of
//         rows, 2 Y vectors and 1 broadcast.
// Why: on a CPU without AVX-512 these products fell to the scalar loop, whose `down` is a
// reduction the compiler may not vectorize: a fifth of the bf16 LoRA step at SmolLM2-135M x 256
// on a Zen 3 (perf), for a twentieth of its FLOPs.
#include <immintrin.h>

#include "../lowrank.h"
#include "avx2_lanes.h"
#include "lowrank_blocks.h"

namespace tk {
namespace cpu {
namespace {

// One step of eight columns: the four W rows' values at c, times one or two rows of Y.
template <bool kTwo, bool kMasked>
__attribute__((target("avx2,fma"), always_inline)) inline void down_step(const float* wj, int64_t n, int64_t c,
                                                                        __m256i tail, __m256 v0, __m256 v1,
                                                                        __m256* a0, __m256* a1) {
#pragma GCC unroll 4
  for (int jj = 0; jj < 4; ++jj) {
    const __m256 wv = kMasked ? _mm256_maskload_ps(wj + jj * n + c, tail) : _mm256_loadu_ps(wj + jj * n + c);
    a0[jj] = _mm256_fmadd_ps(v0, wv, a0[jj]);
    if (kTwo) a1[jj] = _mm256_fmadd_ps(v1, wv, a1[jj]);
  }
}

// The two kernels lowrank_row_blocks takes.
struct Kernels {
template <bool kTwo>
__attribute__((target("avx2,fma"))) static void down_pair(const float* y0, const float* y1, int64_t n, int64_t rp,
                                                   const float* w, float* d0, float* d1, int64_t ldy) {
  const int64_t whole = n / 8 * 8;
  const __m256i tail = avx2_first_lanes(n - whole);
  for (int64_t j0 = 0; j0 < rp; j0 += 4) {
    __m256 a0[4], a1[4];
#pragma GCC unroll 4
    for (int jj = 0; jj < 4; ++jj) a0[jj] = a1[jj] = _mm256_setzero_ps();
    const float* wj = w + j0 * n;
    for (int64_t c = 0; c < whole; c += 8) {
      // Rows are short (a few KiB): fetch the next pair's while this one runs (as the AVX-512 kernel does).
      if (j0 == 0 && c % 16 == 0) {
        _mm_prefetch(reinterpret_cast<const char*>(y0 + 2 * ldy + c), _MM_HINT_T0);
        if (kTwo) _mm_prefetch(reinterpret_cast<const char*>(y1 + 2 * ldy + c), _MM_HINT_T0);
      }
      down_step<kTwo, false>(wj, n, c, tail, _mm256_loadu_ps(y0 + c), kTwo ? _mm256_loadu_ps(y1 + c) : _mm256_setzero_ps(), a0, a1);
    }
    if (whole < n)
      down_step<kTwo, true>(wj, n, whole, tail, _mm256_maskload_ps(y0 + whole, tail),
                            kTwo ? _mm256_maskload_ps(y1 + whole, tail) : _mm256_setzero_ps(), a0, a1);
#pragma GCC unroll 4
    for (int jj = 0; jj < 4; ++jj) {
      d0[j0 + jj] = avx2_sum(a0[jj]);
      if (kTwo) d1[j0 + jj] = avx2_sum(a1[jj]);
    }
  }
}

template <bool kPrefetch>
__attribute__((target("avx2,fma"))) static void up_block(const float* y, int64_t ldy, int64_t rows, int64_t n, int64_t rp,
                                                  const float* s, float* gp) {
  for (int64_t j0 = 0; j0 < rp; j0 += 4)
    for (int64_t c = 0; c < n; c += 16) {
      const __m256i m0 = avx2_first_lanes(n - c), m1 = avx2_first_lanes(n - c - 8);
      __m256 g0[4], g1[4];
#pragma GCC unroll 4
      for (int jj = 0; jj < 4; ++jj) {
        g0[jj] = _mm256_maskload_ps(gp + (j0 + jj) * n + c, m0);
        g1[jj] = _mm256_maskload_ps(gp + (j0 + jj) * n + c + 8, m1);
      }
      for (int64_t i = 0; i < rows; ++i) {
        // Down a column strip, a different row each time: the hardware prefetcher does not follow
        // it, so when no `down` pass brought the block into cache, fetch this row's strip ahead.
        if (kPrefetch) _mm_prefetch(reinterpret_cast<const char*>(y + i * ldy + c + 64), _MM_HINT_T0);
        const __m256 v0 = _mm256_maskload_ps(y + i * ldy + c, m0), v1 = _mm256_maskload_ps(y + i * ldy + c + 8, m1);
        const float* si = s + i * rp + j0;
#pragma GCC unroll 4
        for (int jj = 0; jj < 4; ++jj) {
          const __m256 b = _mm256_broadcast_ss(si + jj);
          g0[jj] = _mm256_fmadd_ps(v0, b, g0[jj]);
          g1[jj] = _mm256_fmadd_ps(v1, b, g1[jj]);
        }
      }
#pragma GCC unroll 4
      for (int jj = 0; jj < 4; ++jj) {
        _mm256_maskstore_ps(gp + (j0 + jj) * n + c, m0, g0[jj]);
        _mm256_maskstore_ps(gp + (j0 + jj) * n + c + 8, m1, g1[jj]);
      }
    }
}

};

}  // namespace

void lowrank_rows_avx2(const float* y, int64_t ldy, int64_t count, int64_t n, int64_t rp, const float* w, float* d,
                       const float* s, float* gp) {
  lowrank_row_blocks<Kernels>(y, ldy, count, n, rp, w, d, s, gp);
}

}  // namespace cpu
}  // namespace tk
