// AVX-512 decoders of whole Q4_K, Q5_K and Q6_K super-blocks (backend/cpu/kquant_decode.h): the
// shared walk (kquant_walk.h) at 16 elements per vector.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#if defined(__clang__)
#pragma clang fp contract(off)
#define TK_KQUANT_TARGET __attribute__((target("avx512f,avx512bw")))
#else
#define TK_KQUANT_TARGET __attribute__((target("avx512f,avx512bw"), optimize("fp-contract=off")))
#endif

#include "kquant_walk.h"

namespace tk {
namespace cpu {
namespace {

struct Avx512Lanes {
  static constexpr int kLanes = 16;
  // 16 bytes widened to 16 int32 lanes.
  TK_KQUANT_TARGET static __m512i bytes(const uint8_t* p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  TK_KQUANT_TARGET static __m512i splat(int v) { return _mm512_set1_epi32(v); }
  TK_KQUANT_TARGET static __m512 splat(float v) { return _mm512_set1_ps(v); }
  TK_KQUANT_TARGET static __m512i and_(__m512i a, __m512i b) { return _mm512_and_si512(a, b); }
  TK_KQUANT_TARGET static __m512i or_(__m512i a, __m512i b) { return _mm512_or_si512(a, b); }
  TK_KQUANT_TARGET static __m512i srl(__m512i a, int n) { return _mm512_srli_epi32(a, n); }
  TK_KQUANT_TARGET static __m512i sll(__m512i a, int n) { return _mm512_slli_epi32(a, n); }
  TK_KQUANT_TARGET static __m512i sub_int(__m512i a, __m512i b) { return _mm512_sub_epi32(a, b); }
  TK_KQUANT_TARGET static __m512 to_float(__m512i a) { return _mm512_cvtepi32_ps(a); }
  TK_KQUANT_TARGET static __m512 mul(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
  TK_KQUANT_TARGET static __m512 sub(__m512 a, __m512 b) { return _mm512_sub_ps(a, b); }
  TK_KQUANT_TARGET static void store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
};

}  // namespace

bool has_kquant_vector(WeightFormat format) {
  return format == WeightFormat::Q4_K || format == WeightFormat::Q5_K || format == WeightFormat::Q6_K;
}

void decode_kquant_avx512(WeightFormat format, const void* blocks, int64_t count, float* out) {
  decode_kquant_blocks<Avx512Lanes>(format, blocks, count, out);
}

}  // namespace cpu
}  // namespace tk
