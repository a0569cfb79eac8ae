// The epilogue the AVX2 micro-kernels share: C row = alpha * acc (+ beta * C row), 16 floats.
#pragma once
#include <immintrin.h>

namespace tk {

__attribute__((target("avx2,fma"), always_inline)) inline void store_row_avx2(float* c, __m256 acc0, __m256 acc1,
                                                                             __m256 alpha, __m256 beta, bool accumulate) {
  __m256 r0 = _mm256_mul_ps(alpha, acc0), r1 = _mm256_mul_ps(alpha, acc1);
  if (accumulate) {  // C is never read when beta == 0, so garbage or NaN there is ignored
    r0 = _mm256_fmadd_ps(beta, _mm256_loadu_ps(c), r0);
    r1 = _mm256_fmadd_ps(beta, _mm256_loadu_ps(c + 8), r1);
  }
  _mm256_storeu_ps(c, r0);
  _mm256_storeu_ps(c + 8, r1);
}

}  // namespace tk
