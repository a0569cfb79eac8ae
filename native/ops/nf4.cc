#include "nf4.h"

#include <algorithm>
#include <cmath>

#include "../core/quant_blocks.h"

namespace tk {
namespace {

// Index of the NF4 code for a scaled value in [-1, 1]: the number of midpoints strictly below it
// (torch.bucketize(right=False), as bitsandbytes' reference does).
inline uint8_t nf4_index(float v) {
  static const auto mids = [] {
    struct M { float m[15]; } r;
    for (int i = 0; i < 15; ++i) r.m[i] = (kNf4Code[i] + kNf4Code[i + 1]) / 2.0f;
    return r;
  }();
  uint8_t q = 0;
  for (int i = 0; i < 15; ++i) q += mids.m[i] < v;
  return q;
}

// Nearest entry of the sorted 256-entry dynamic map, ties to the lower entry.
inline uint8_t dynamic_index(float v) {
  v = std::min(1.0f, std::max(-1.0f, v));
  const float* begin = kBnbDynamicMap;
  const float* right = std::lower_bound(begin, begin + 256, v);
  if (right == begin) return 0;
  if (right == begin + 256) return 255;
  const float* left = right - 1;
  const uint8_t idx = static_cast<uint8_t>(right - begin);
  return std::fabs(*right - v) < std::fabs(v - *left) ? idx : static_cast<uint8_t>(idx - 1);
}

}  // namespace

int64_t nf4_blocks(int64_t n, int64_t blocksize) { return (n + blocksize - 1) / blocksize; }

void nf4_quantize(const float* x, int64_t n, int64_t blocksize, bool double_quant, const Nf4Quantized& out) {
  const int64_t blocks = nf4_blocks(n, blocksize);
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t start = b * blocksize, end = std::min(n, start + blocksize);
    float amax = 0.0f;
    for (int64_t i = start; i < end; ++i) amax = std::max(amax, std::fabs(x[i]));
    out.absmax[b] = amax;
    const float inv = 1.0f / std::max(amax, 1e-38f);
    for (int64_t i = start; i < end; ++i) {
      const float v = std::min(1.0f, std::max(-1.0f, x[i] * inv));
      const uint8_t q = nf4_index(v);
      uint8_t& byte = out.codes[i / 2];
      byte = (i & 1) ? static_cast<uint8_t>((byte & 0xf0) | q) : static_cast<uint8_t>(q << 4);
    }
  }
  // An odd count pads the last byte's low nibble with the code of 0.0, as bitsandbytes pads with 0.
  if (n & 1) out.codes[n / 2] = static_cast<uint8_t>((out.codes[n / 2] & 0xf0) | nf4_index(0.0f));
  if (!double_quant) return;

  // offset = mean(absmax), summed in fp64 and rounded. bitsandbytes takes torch's fp32 mean, whose
  // last bit depends on PyTorch's vectorized summation order; the codes agree either way.
  double sum = 0.0;
  for (int64_t b = 0; b < blocks; ++b) sum += out.absmax[b];
  const float offset = static_cast<float>(sum / static_cast<double>(blocks));
  *out.offset = offset;
  const int64_t blocks2 = (blocks + kNf4DoubleQuantBlock - 1) / kNf4DoubleQuantBlock;
  for (int64_t c = 0; c < blocks2; ++c) {
    const int64_t start = c * kNf4DoubleQuantBlock, end = std::min(blocks, start + kNf4DoubleQuantBlock);
    float amax = 0.0f;
    for (int64_t b = start; b < end; ++b) amax = std::max(amax, std::fabs(out.absmax[b] - offset));
    out.absmax2[c] = amax;
    const float inv = 1.0f / amax;
    for (int64_t b = start; b < end; ++b)
      out.qabsmax[b] = amax == 0.0f ? 0 : dynamic_index((out.absmax[b] - offset) * inv);
  }
}

void nf4_resolve_absmax(const uint8_t* qabsmax, const float* absmax2, float offset, int64_t blocks, float* absmax) {
  for (int64_t b = 0; b < blocks; ++b)
    absmax[b] = kBnbDynamicMap[qabsmax[b]] * absmax2[b / kNf4DoubleQuantBlock] + offset;
}

namespace {

// Both code values of every byte: the GEMM's packing step decodes weights on the hot path.
struct PairTable {
  float v[256][2];
  PairTable() {
    for (int b = 0; b < 256; ++b) v[b][0] = kNf4Code[b >> 4], v[b][1] = kNf4Code[b & 15];
  }
};
const PairTable kPairs;

}  // namespace

void nf4_dequantize(const uint8_t* codes, const float* absmax, int64_t blocksize, int64_t start, int64_t count,
                    float* out) {
  int64_t e = start;
  const int64_t end = start + count;
  while (e < end) {
    // One block (or the part of it in range) at a time: one absmax, whole bytes in the middle.
    const int64_t block = e / blocksize, stop = std::min(end, (block + 1) * blocksize);
    const float scale = absmax[block];
    if (e & 1) {  // an odd first element is the low nibble of its byte
      *out++ = kNf4Code[codes[e >> 1] & 15] * scale;
      ++e;
    }
    for (; e + 1 < stop; e += 2) {
      const float* pair = kPairs.v[codes[e >> 1]];
      out[0] = pair[0] * scale;
      out[1] = pair[1] * scale;
      out += 2;
    }
    if (e < stop) {  // an even last element is the high nibble
      *out++ = kNf4Code[codes[e >> 1] >> 4] * scale;
      ++e;
    }
  }
}

}  // namespace tk
