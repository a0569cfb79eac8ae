// In-register 16 x 16 transpose of 32-bit lanes with AVX-512, shared by the packing routines.
#pragma once
#include <immintrin.h>

namespace tk {

// Transposes 16 rows of 16 floats in registers: on return r[c] holds column c of the input.
__attribute__((target("avx512f"), always_inline)) inline void transpose_16x16_ps(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // Now each 128-bit lane l of u[4i + k] holds rows 4i..4i+3 at column 4l + k.
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // Gather lane l of u[k], u[4+k], u[8+k], u[12+k] into column 4l + k.
  for (int k = 0; k < 4; ++k) {
    const __m512 x0 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x44), y0 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x44);
    const __m512 x1 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xEE), y1 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xEE);
    r[k] = _mm512_shuffle_f32x4(x0, y0, 0x88);
    r[4 + k] = _mm512_shuffle_f32x4(x0, y0, 0xDD);
    r[8 + k] = _mm512_shuffle_f32x4(x1, y1, 0x88);
    r[12 + k] = _mm512_shuffle_f32x4(x1, y1, 0xDD);
  }
}


}  // namespace tk
