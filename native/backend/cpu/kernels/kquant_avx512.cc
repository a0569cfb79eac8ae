// AVX-512 decoders of whole Q4_K, Q5_K and Q6_K super-blocks (backend/cpu/kquant_decode.h): 16
// elements per vector, the same products as gguf_quant.cc's scalar ones in the same order.
// fp-contract is off: a fused multiply-add of dj·q − mj would round once where the scalar code
// (and gguf-py) rounds twice.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "../../../core/float16.h"
#include "../../../core/quant_blocks.h"
#include "../kquant_decode.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#define TK_KQUANT_TARGET __attribute__((target("avx512f,avx512bw")))
#else
#define TK_KQUANT_TARGET __attribute__((target("avx512f,avx512bw"), optimize("fp-contract=off")))
#endif

namespace tk {
namespace cpu {
namespace {

// 16 bytes widened to 16 int32 lanes.
TK_KQUANT_TARGET inline __m512i bytes16(const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

// Q4_K / Q5_K: element 32j + l = (d·sc_j)·q − dmin·m_j, q = nibble j % 2 of qs[32(j / 2) + l]
// (Q5_K: | bit j of qh[l] << 4).
template <bool kFive>
TK_KQUANT_TARGET void decode_q45_k(const uint8_t* block, float* out) {
  const auto* b4 = reinterpret_cast<const BlockQ4_K*>(block);
  const auto* b5 = reinterpret_cast<const BlockQ5_K*>(block);
  const float d = f16_to_float(kFive ? b5->d : b4->d), dmin = f16_to_float(kFive ? b5->dmin : b4->dmin);
  const uint8_t* scales = kFive ? b5->scales : b4->scales;
  const uint8_t* qs = kFive ? b5->qs : b4->qs;
  const __m512i nibble = _mm512_set1_epi32(0x0f), one = _mm512_set1_epi32(1);
  for (int j = 0; j < 8; ++j) {
    float sc, m;
    kquant_scale_min(scales, j, sc, m);
    const __m512 dj = _mm512_set1_ps(d * sc), mj = _mm512_set1_ps(dmin * m);
    const int c = j / 2, n = j % 2;
    for (int l = 0; l < 32; l += 16) {
      __m512i q = _mm512_and_si512(_mm512_srli_epi32(bytes16(qs + 32 * c + l), 4 * n), nibble);
      if (kFive) q = _mm512_or_si512(q, _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(bytes16(b5->qh + l), j), one), 4));
      _mm512_storeu_ps(out + 32 * j + l, _mm512_sub_ps(_mm512_mul_ps(dj, _mm512_cvtepi32_ps(q)), mj));
    }
  }
}

// Q6_K: in each half of 128, byte l of ql and qh gives elements l, l + 32, l + 64, l + 96 (as
// gguf_quant.cc's decoder), each (d·scale)·(q − 32).
TK_KQUANT_TARGET void decode_q6_k(const uint8_t* block, float* out) {
  const auto* b = reinterpret_cast<const BlockQ6_K*>(block);
  const float d = f16_to_float(b->d);
  const __m512i low = _mm512_set1_epi32(0x0f), two = _mm512_set1_epi32(3), bias = _mm512_set1_epi32(32);
  for (int h = 0; h < 2; ++h) {
    const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
    const int8_t* sc = b->scales + 8 * h;
    float* y = out + 128 * h;
    for (int l = 0; l < 32; l += 16) {
      const int is = l / 16;
      const __m512i a = bytes16(ql + l), c = bytes16(ql + l + 32), hi = bytes16(qh + l);
      const __m512i q[4] = {
          _mm512_or_si512(_mm512_and_si512(a, low), _mm512_slli_epi32(_mm512_and_si512(hi, two), 4)),
          _mm512_or_si512(_mm512_and_si512(c, low), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hi, 2), two), 4)),
          _mm512_or_si512(_mm512_srli_epi32(a, 4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hi, 4), two), 4)),
          _mm512_or_si512(_mm512_srli_epi32(c, 4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(hi, 6), two), 4)),
      };
      for (int k = 0; k < 4; ++k) {
        const __m512 scale = _mm512_set1_ps(d * static_cast<float>(sc[is + 2 * k]));
        _mm512_storeu_ps(y + l + 32 * k, _mm512_mul_ps(scale, _mm512_cvtepi32_ps(_mm512_sub_epi32(q[k], bias))));
      }
    }
  }
}

}  // namespace

bool has_kquant_vector(WeightFormat format) {
  return format == WeightFormat::Q4_K || format == WeightFormat::Q5_K || format == WeightFormat::Q6_K;
}

void decode_kquant_avx512(WeightFormat format, const void* blocks, int64_t count, float* out) {
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
