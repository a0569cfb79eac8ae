// backend/cpu/nf4_decode.h with AVX2: the 16-entry code table lives in two registers; each half
// of a step's sixteen 4-bit codes is looked up in both (vpermps reads an index's low three bits)
// and bit 3 picks between them.
#include <immintrin.h>

#include "../../../core/quant_blocks.h"
#include "../nf4_decode.h"

#define TK_NF4_TARGET __attribute__((target("avx2")))
#include "nf4_walk.h"

namespace tk {
namespace cpu {
namespace {

struct Avx2Steps {
  static constexpr bool kThirtyTwo = false;
  TK_NF4_TARGET static __m256 scale(float absmax) { return _mm256_set1_ps(absmax); }
  TK_NF4_TARGET static void sixteen(const uint8_t* bytes8, __m256 scale, float* out) {
    const __m256 low_codes = _mm256_loadu_ps(kNf4Code), high_codes = _mm256_loadu_ps(kNf4Code + 8);
    const __m128i nibble = _mm_set1_epi8(0x0f);
    const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes8));
    const __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), nibble), low = _mm_and_si128(bytes, nibble);
    const __m128i index = _mm_unpacklo_epi8(high, low);  // element 2j: byte j's high nibble; 2j + 1: its low one
    for (int h = 0; h < 2; ++h) {
      const __m256i i = _mm256_cvtepu8_epi32(h ? _mm_srli_si128(index, 8) : index);
      const __m256 bit3 = _mm256_castsi256_ps(_mm256_slli_epi32(i, 28));  // bit 3 in the sign, for blendv
      const __m256 code = _mm256_blendv_ps(_mm256_permutevar8x32_ps(low_codes, i), _mm256_permutevar8x32_ps(high_codes, i), bit3);
      _mm256_storeu_ps(out + 8 * h, _mm256_mul_ps(code, scale));
    }
  }
};

}  // namespace

TK_NF4_TARGET void nf4_dequantize_avx2(const uint8_t* codes, const float* absmax, int64_t blocksize, int64_t start,
                                       int64_t count, float* out) {
  nf4_walk<Avx2Steps>(codes, absmax, blocksize, start, count, out);
}

}  // namespace cpu
}  // namespace tk
