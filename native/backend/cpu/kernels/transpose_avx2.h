// In-register 8 x 8 transpose of 32-bit lanes with AVX2, shared by the packing routines
// (gemm_avx2.cc's fp32 panels, gemm_avx2_bf16.cc's bf16-pair panels).
#pragma once
#include <immintrin.h>

namespace tk {

// On return r[c] holds column c of the eight input rows. Bits pass through untouched (shuffles
// only), so it transposes bf16 pairs viewed as floats too.
__attribute__((target("avx2"), always_inline)) inline void transpose_8x8_ps(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {  // lane l of u[4i + k]: rows 4i..4i+3 at column 4l + k
    u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x20);
    r[4 + k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x31);
  }
}

}  // namespace tk
