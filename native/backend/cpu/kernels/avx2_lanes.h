// Two AVX2 idioms the AVX2 kernels share (gemm_avx2.cc, lowrank_avx2.cc, vexp.cc): the lane mask
// of a ragged tail, which AVX2 builds as a vector where AVX-512 has k-registers, and the sum of
// a vector's eight lanes.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace tk {

// Lanes [0, left) set for _mm256_maskload_ps / maskstore: all eight from 8 on, none at 0 or below.
__attribute__((target("avx2"), always_inline)) inline __m256i avx2_first_lanes(int64_t left) {
  const int k = left >= 8 ? 8 : left <= 0 ? 0 : static_cast<int>(left);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__attribute__((target("avx2"), always_inline)) inline float avx2_sum(__m256 v) {
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

}  // namespace tk
