// backend/cpu/nf4_decode.h with AVX-512: the whole 16-entry code table fits one register, so a
// code is one vpermps (it reads an index's low four bits) where AVX2 needs two and a blend.
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_* values.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include "../../../core/quant_blocks.h"
#include "../../../ops/nf4.h"
#include "../nf4_decode.h"

namespace tk {
namespace cpu {
namespace {

// Sixteen codes (element 2j: byte j's high nibble, 2j + 1: its low one) times the block's absmax.
__attribute__((target("avx512f"))) inline void store_codes(__m128i index, __m512 table, __m512 scale, float* out) {
  const __m512 code = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(index), table);
  _mm512_storeu_ps(out, _mm512_mul_ps(code, scale));
}

}  // namespace

__attribute__((target("avx512f"))) void nf4_dequantize_avx512(const uint8_t* codes, const float* absmax,
                                                              int64_t blocksize, int64_t start, int64_t count,
                                                              float* out) {
  const __m512 table = _mm512_loadu_ps(kNf4Code);
  const __m128i nibble = _mm_set1_epi8(0x0f);
  int64_t e = start;
  const int64_t end = start + count;
  while (e < end) {
    // One block (or its part in range) at a time, as nf4_dequantize: one absmax; the ragged ends
    // (an odd first element, a tail under sixteen) go through it.
    const int64_t block = e / blocksize, stop = std::min(end, (block + 1) * blocksize);
    const __m512 scale = _mm512_set1_ps(absmax[block]);
    if (e & 1) {
      nf4_dequantize(codes, absmax, blocksize, e, 1, out);
      ++e, ++out;
    }
    for (; e + 32 <= stop; e += 32, out += 32) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + (e >> 1)));
      const __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), nibble), low = _mm_and_si128(bytes, nibble);
      store_codes(_mm_unpacklo_epi8(high, low), table, scale, out);
      store_codes(_mm_unpackhi_epi8(high, low), table, scale, out + 16);
    }
    if (e + 16 <= stop) {
      const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + (e >> 1)));
      const __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), nibble), low = _mm_and_si128(bytes, nibble);
      store_codes(_mm_unpacklo_epi8(high, low), table, scale, out);
      e += 16, out += 16;
    }
    if (e < stop) {
      nf4_dequantize(codes, absmax, blocksize, e, stop - e, out);
      out += stop - e, e = stop;
    }
  }
}

}  // namespace cpu
}  // namespace tk
