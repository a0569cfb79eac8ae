// The walk of an NF4 range, written once for every ISA: one block (one absmax) at a time, its odd
// first element and its tail under sixteen through nf4_dequantize, the rest through the ISA's
// Steps::sixteen / Steps::thirty_two (nf4_avx2.cc, nf4_avx512.cc), whose including file defines
// TK_NF4_TARGET (its target attribute).
#pragma once
#include <algorithm>
#include <cstdint>

#include "../../../ops/nf4.h"

namespace tk {
namespace cpu {
namespace {

// Steps::scale(absmax): the block's absmax in a register; sixteen(bytes, scale, out) decodes 8
// bytes, and thirty_two(bytes, scale, out) 16 where Steps::kThirtyTwo says it has one.
template <class Steps>
TK_NF4_TARGET inline void nf4_walk(const uint8_t* codes, const float* absmax, int64_t blocksize, int64_t start,
                                   int64_t count, float* out) {
  int64_t e = start;
  const int64_t end = start + count;
  while (e < end) {
    const int64_t block = e / blocksize, stop = std::min(end, (block + 1) * blocksize);
    const auto scale = Steps::scale(absmax[block]);
    if (e & 1) {
      nf4_dequantize(codes, absmax, blocksize, e, 1, out);
      ++e, ++out;
    }
    if constexpr (Steps::kThirtyTwo)
      for (; e + 32 <= stop; e += 32, out += 32) Steps::thirty_two(codes + (e >> 1), scale, out);
    for (; e + 16 <= stop; e += 16, out += 16) Steps::sixteen(codes + (e >> 1), scale, out);
    if (e < stop) {
      nf4_dequantize(codes, absmax, blocksize, e, stop - e, out);
      out += stop - e, e = stop;
    }
  }
}

}  // namespace
}  // namespace cpu
}  // namespace tk
