// backend/cpu/nf4_decode.h with AVX-512: the whole 16-entry code table fits one register, so a
// code is one vpermps (it reads an index's low four bits) where AVX2 needs two and a blend.
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_* values.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "../../../core/quant_blocks.h"
#include "../nf4_decode.h"

#define TK_NF4_TARGET __attribute__((target("avx512f")))
#include "nf4_walk.h"

namespace tk {
namespace cpu {
namespace {

struct Avx512Steps {
  static constexpr bool kThirtyTwo = true;
  TK_NF4_TARGET static __m512 scale(float absmax) { return _mm512_set1_ps(absmax); }
  // Sixteen codes (element 2j: byte j's high nibble, 2j + 1: its low one) times the block's absmax.
  TK_NF4_TARGET static void store(__m128i index, __m512 scale, float* out) {
    const __m512 code = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(index), _mm512_loadu_ps(kNf4Code));
    _mm512_storeu_ps(out, _mm512_mul_ps(code, scale));
  }
  TK_NF4_TARGET static void split(__m128i bytes, __m128i& high, __m128i& low) {
    const __m128i nibble = _mm_set1_epi8(0x0f);
    high = _mm_and_si128(_mm_srli_epi16(bytes, 4), nibble), low = _mm_and_si128(bytes, nibble);
  }
  TK_NF4_TARGET static void sixteen(const uint8_t* bytes8, __m512 scale, float* out) {
    __m128i high, low;
    split(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes8)), high, low);
    store(_mm_unpacklo_epi8(high, low), scale, out);
  }
  TK_NF4_TARGET static void thirty_two(const uint8_t* bytes16, __m512 scale, float* out) {
    __m128i high, low;
    split(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes16)), high, low);
    store(_mm_unpacklo_epi8(high, low), scale, out);
    store(_mm_unpackhi_epi8(high, low), scale, out + 16);
  }
};

}  // namespace

TK_NF4_TARGET void nf4_dequantize_avx512(const uint8_t* codes, const float* absmax, int64_t blocksize, int64_t start,
                                         int64_t count, float* out) {
  nf4_walk<Avx512Steps>(codes, absmax, blocksize, start, count, out);
}

}  // namespace cpu
}  // namespace tk
