// AVX2 decoders of whole Q4_K, Q5_K and Q6_K super-blocks (backend/cpu/kquant_decode.h): the
// AVX-512 decoders' walk at 8 elements per vector, for CPUs without AVX-512. The same products
// as gguf_quant.cc's scalar ones, in the same order; fp-contract is off for the same reason (a
// fused dj·q − mj would round once where the scalar code and gguf-py round twice).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "../../../core/float16.h"
#include "../../../core/quant_blocks.h"
#include "../kquant_decode.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#define TK_KQUANT_TARGET __attribute__((target("avx2")))
#else
#define TK_KQUANT_TARGET __attribute__((target("avx2"), optimize("fp-contract=off")))
#endif

namespace tk {
namespace cpu {
namespace {

// 8 bytes widened to 8 int32 lanes.
TK_KQUANT_TARGET inline __m256i bytes8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// Q4_K / Q5_K: element 32j + l = (d·sc_j)·q − dmin·m_j, q = nibble j % 2 of qs[32(j / 2) + l]
// (Q5_K: | bit j of qh[l] << 4).
template <bool kFive>
TK_KQUANT_TARGET void decode_q45_k(const uint8_t* block, float* out) {
  const auto* b4 = reinterpret_cast<const BlockQ4_K*>(block);
  const auto* b5 = reinterpret_cast<const BlockQ5_K*>(block);
  const float d = f16_to_float(kFive ? b5->d : b4->d), dmin = f16_to_float(kFive ? b5->dmin : b4->dmin);
  const uint8_t* scales = kFive ? b5->scales : b4->scales;
  const uint8_t* qs = kFive ? b5->qs : b4->qs;
  const __m256i nibble = _mm256_set1_epi32(0x0f), one = _mm256_set1_epi32(1);
  for (int j = 0; j < 8; ++j) {
    float sc, m;
    kquant_scale_min(scales, j, sc, m);
    const __m256 dj = _mm256_set1_ps(d * sc), mj = _mm256_set1_ps(dmin * m);
    const int c = j / 2, n = j % 2;
    for (int l = 0; l < 32; l += 8) {
      __m256i q = _mm256_and_si256(_mm256_srli_epi32(bytes8(qs + 32 * c + l), 4 * n), nibble);
      if (kFive) q = _mm256_or_si256(q, _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(bytes8(b5->qh + l), j), one), 4));
      _mm256_storeu_ps(out + 32 * j + l, _mm256_sub_ps(_mm256_mul_ps(dj, _mm256_cvtepi32_ps(q)), mj));
    }
  }
}

// Q6_K: in each half of 128, byte l of ql and qh gives elements l, l + 32, l + 64, l + 96 (as
// gguf_quant.cc's decoder), each (d·scale)·(q − 32).
TK_KQUANT_TARGET void decode_q6_k(const uint8_t* block, float* out) {
  const auto* b = reinterpret_cast<const BlockQ6_K*>(block);
  const float d = f16_to_float(b->d);
  const __m256i low = _mm256_set1_epi32(0x0f), two = _mm256_set1_epi32(3), bias = _mm256_set1_epi32(32);
  for (int h = 0; h < 2; ++h) {
    const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
    const int8_t* sc = b->scales + 8 * h;
    float* y = out + 128 * h;
    for (int l = 0; l < 32; l += 8) {
      const int is = l / 16;
      const __m256i a = bytes8(ql + l), c = bytes8(ql + l + 32), hi = bytes8(qh + l);
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(a, low), _mm256_slli_epi32(_mm256_and_si256(hi, two), 4)),
          _mm256_or_si256(_mm256_and_si256(c, low), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hi, 2), two), 4)),
          _mm256_or_si256(_mm256_srli_epi32(a, 4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hi, 4), two), 4)),
          _mm256_or_si256(_mm256_srli_epi32(c, 4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hi, 6), two), 4)),
      };
      for (int k = 0; k < 4; ++k) {
        const __m256 scale = _mm256_set1_ps(d * static_cast<float>(sc[is + 2 * k]));
        _mm256_storeu_ps(y + l + 32 * k, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(_mm256_sub_epi32(q[k], bias))));
      }
    }
  }
}

}  // namespace

void decode_kquant_avx2(WeightFormat format, const void* blocks, int64_t count, float* out) {
  const auto* p = static_cast<const uint8_t*>(blocks);
  switch (format) {
    case WeightFormat::Q4_K:
      for (int64_t i = 0; i < count; ++i) decode_q45_k<false>(p + i * sizeof(BlockQ4_K), out + i * kGgufSuperBlock);
      return;
    case WeightFormat::Q5_K:
      for (int64_t i = 0; i < count; ++i) decode_q45_k<true>(p + i * sizeof(BlockQ5_K), out + i * kGgufSuperBlock);
      return;
    case WeightFormat::Q6_K:
      for (int64_t i = 0; i < count; ++i) decode_q6_k(p + i * sizeof(BlockQ6_K), out + i * kGgufSuperBlock);
      return;
    default: return;
  }
}

}  // namespace cpu
}  // namespace tk
