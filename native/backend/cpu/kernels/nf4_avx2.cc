// backend/cpu/nf4_decode.h: the 16-entry code table lives in two registers; each half of a step's
// sixteen 4-bit codes is looked up in both (vpermps reads an index's low three bits) and bit 3
// picks between them.
#include <immintrin.h>

#include <algorithm>

#include "../../../core/quant_blocks.h"
#include "../../../ops/nf4.h"
#include "../nf4_decode.h"

namespace tk {
namespace cpu {

__attribute__((target("avx2"))) void nf4_dequantize_avx2(const uint8_t* codes, const float* absmax, int64_t blocksize,
                                                         int64_t start, int64_t count, float* out) {
  const __m256 low_codes = _mm256_loadu_ps(kNf4Code), high_codes = _mm256_loadu_ps(kNf4Code + 8);
  const __m128i nibble = _mm_set1_epi8(0x0f);
  int64_t e = start;
  const int64_t end = start + count;
  while (e < end) {
    // One block (or its part in range) at a time, as nf4_dequantize: one absmax; the ragged ends
    // (an odd first element, a tail under sixteen) go through it.
    const int64_t block = e / blocksize, stop = std::min(end, (block + 1) * blocksize);
    const __m256 scale = _mm256_set1_ps(absmax[block]);
    if (e & 1) {
      nf4_dequantize(codes, absmax, blocksize, e, 1, out);
      ++e, ++out;
    }
    for (; e + 16 <= stop; e += 16, out += 16) {
      const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + (e >> 1)));
      const __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), nibble), low = _mm_and_si128(bytes, nibble);
      const __m128i index = _mm_unpacklo_epi8(high, low);  // element 2j: byte j's high nibble; 2j + 1: its low one
      for (int h = 0; h < 2; ++h) {
        const __m256i i = _mm256_cvtepu8_epi32(h ? _mm_srli_si128(index, 8) : index);
        const __m256 bit3 = _mm256_castsi256_ps(_mm256_slli_epi32(i, 28));  // bit 3 in the sign, for blendv
        const __m256 code = _mm256_blendv_ps(_mm256_permutevar8x32_ps(low_codes, i), _mm256_permutevar8x32_ps(high_codes, i), bit3);
        _mm256_storeu_ps(out + 8 * h, _mm256_mul_ps(code, scale));
      }
    }
    if (e < stop) {
      nf4_dequantize(codes, absmax, blocksize, e, stop - e, out);
      out += stop - e, e = stop;
    }
  }
}

}  // namespace cpu
}  // namespace tk
