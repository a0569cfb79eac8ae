// AVX2 decoders of whole Q4_K, Q5_K and Q6_K super-blocks (backend/cpu/kquant_decode.h): the
// shared walk (kquant_walk.h) at 8 elements per vector, for CPUs without AVX-512.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#if defined(__clang__)
#pragma clang fp contract(off)
#define TK_KQUANT_TARGET __attribute__((target("avx2")))
#else
#define TK_KQUANT_TARGET __attribute__((target("avx2"), optimize("fp-contract=off")))
#endif

#include "kquant_walk.h"

namespace tk {
namespace cpu {
namespace {

struct Avx2Lanes {
  static constexpr int kLanes = 8;
  // 8 bytes widened to 8 int32 lanes.
  TK_KQUANT_TARGET static __m256i bytes(const uint8_t* p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  TK_KQUANT_TARGET static __m256i splat(int v) { return _mm256_set1_epi32(v); }
  TK_KQUANT_TARGET static __m256 splat(float v) { return _mm256_set1_ps(v); }
  TK_KQUANT_TARGET static __m256i and_(__m256i a, __m256i b) { return _mm256_and_si256(a, b); }
  TK_KQUANT_TARGET static __m256i or_(__m256i a, __m256i b) { return _mm256_or_si256(a, b); }
  TK_KQUANT_TARGET static __m256i srl(__m256i a, int n) { return _mm256_srli_epi32(a, n); }
  TK_KQUANT_TARGET static __m256i sll(__m256i a, int n) { return _mm256_slli_epi32(a, n); }
  TK_KQUANT_TARGET static __m256i sub_int(__m256i a, __m256i b) { return _mm256_sub_epi32(a, b); }
  TK_KQUANT_TARGET static __m256 to_float(__m256i a) { return _mm256_cvtepi32_ps(a); }
  TK_KQUANT_TARGET static __m256 mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
  TK_KQUANT_TARGET static __m256 sub(__m256 a, __m256 b) { return _mm256_sub_ps(a, b); }
  TK_KQUANT_TARGET static void store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
};

}  // namespace

void decode_kquant_avx2(WeightFormat format, const void* blocks, int64_t count, float* out) {
  decode_kquant_blocks<Avx2Lanes>(format, blocks, count, out);
}

}  // namespace cpu
}  // namespace tk
