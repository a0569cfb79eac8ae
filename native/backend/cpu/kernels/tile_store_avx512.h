// The epilogue every AVX-512 micro-kernel shares: C row = alpha * acc (+ beta * C row), 32 floats.
#pragma once
#include <immintrin.h>

namespace tk {

__attribute__((target("avx512f"), always_inline)) inline void store_row_avx512(float* c, __m512 acc0, __m512 acc1,
                                                                              __m512 alpha, __m512 beta,
                                                                              bool accumulate) {
  __m512 r0 = _mm512_mul_ps(alpha, acc0), r1 = _mm512_mul_ps(alpha, acc1);
  if (accumulate) {  // C is never read when beta == 0, so garbage or NaN there is ignored
    r0 = _mm512_fmadd_ps(beta, _mm512_loadu_ps(c), r0);
    r1 = _mm512_fmadd_ps(beta, _mm512_loadu_ps(c + 16), r1);
  }
  _mm512_storeu_ps(c, r0);
  _mm512_storeu_ps(c + 16, r1);
}

}  // namespace tk
