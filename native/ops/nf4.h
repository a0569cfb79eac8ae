// NF4 quantization, bitsandbytes-compatible (quantize_4bit / dequantize_4bit, quant_type="nf4").
// Quantize: per block, absmax = max|x|; each x * (1/absmax), clamped to [-1, 1], takes the NF4 code
// whose interval (split at midpoints between codes, ties to the lower code) holds it.
// Double quantization (compress_statistics=True): offset = mean(absmax); absmax - offset is
// quantized blockwise (256) with the signed dynamic map to the nearest code.
#pragma once
#include <cstdint>

namespace tk {

struct Nf4Quantized {
  uint8_t* codes;     // ceil(n / 2) bytes
  float* absmax;      // blocks floats (always written: the unquantized statistics)
  uint8_t* qabsmax;   // double quant only: blocks bytes
  float* absmax2;     // double quant only: ceil(blocks / 256) floats
  float* offset;      // double quant only: one float
};

int64_t nf4_blocks(int64_t n, int64_t blocksize);

// Quantizes x[0..n). With double_quant, qabsmax/absmax2/offset are filled too.
void nf4_quantize(const float* x, int64_t n, int64_t blocksize, bool double_quant, const Nf4Quantized& out);

// Recovers the fp32 absmax of every block from double-quantized statistics:
// absmax[b] = kBnbDynamicMap[qabsmax[b]] * absmax2[b / 256] + offset.
void nf4_resolve_absmax(const uint8_t* qabsmax, const float* absmax2, float offset, int64_t blocks, float* absmax);

// out[i] = W[start + i] for i < count, from codes and fp32 absmax (any start, any count).
void nf4_dequantize(const uint8_t* codes, const float* absmax, int64_t blocksize, int64_t start, int64_t count,
                    float* out);

}  // namespace tk
