// GGUF block quantization: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL (blocks of 32) and the K-quants Q2_K,
// Q3_K, Q4_K, Q5_K, Q6_K, Q8_K and IQ4_XS (super-blocks of 256) — dequantized exactly as llama.cpp's dequantize_row_*
// (and gguf-py's dequantize, element for element); the 32-blocks also quantized as its
// quantize_row_*_ref (used to make test and bench weights). K-quants are only ever read: they
// come in the files users have (Q4_K_M, Q5_K_M, ... mix them, with Q5_0 / Q5_1 / Q8_0 where a
// row is not a multiple of 256), and a frozen base never needs requantizing to one; so are Q5_0,
// Q5_1 and the IQ4s.
#pragma once
#include <cstdint>

#include "../core/host_device.h"
#include "../core/quant_blocks.h"

namespace tk {

// In WeightFormat's order (ops/weights.h maps one to the other by position).
enum class GgufType { Q4_0, Q4_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, Q5_0, Q5_1, IQ4_NL, IQ4_XS };

// Inline, for the host and the GPU (the CUDA backend decodes blocks element by element).
TK_HOST_DEVICE inline int64_t gguf_block_bytes(GgufType t) {
  switch (t) {
    case GgufType::Q4_0: return sizeof(BlockQ4_0);
    case GgufType::Q4_1: return sizeof(BlockQ4_1);
    case GgufType::Q8_0: return sizeof(BlockQ8_0);
    case GgufType::Q2_K: return sizeof(BlockQ2_K);
    case GgufType::Q3_K: return sizeof(BlockQ3_K);
    case GgufType::Q4_K: return sizeof(BlockQ4_K);
    case GgufType::Q5_K: return sizeof(BlockQ5_K);
    case GgufType::Q6_K: return sizeof(BlockQ6_K);
    case GgufType::Q8_K: return sizeof(BlockQ8_K);
    case GgufType::Q5_0: return sizeof(BlockQ5_0);
    case GgufType::Q5_1: return sizeof(BlockQ5_1);
    case GgufType::IQ4_NL: return sizeof(BlockIQ4_NL);
    case GgufType::IQ4_XS: return sizeof(BlockIQ4_XS);
  }
  return 0;
}

// Weights per block: 32, or 256 for the K-quants.
TK_HOST_DEVICE inline int64_t gguf_block_elements(GgufType t) {
  switch (t) {
    case GgufType::Q4_0: case GgufType::Q4_1: case GgufType::Q5_0: case GgufType::Q5_1: case GgufType::Q8_0: case GgufType::IQ4_NL: return kGgufBlock;
    default: return kGgufSuperBlock;
  }
}

// out[i] = W[start + i]; `blocks` points at the block holding element 0 of the tensor.
void gguf_dequantize(GgufType t, const void* blocks, int64_t start, int64_t count, float* out);

// Quantizes n (a multiple of 32) values into n / 32 blocks (Q4_0, Q4_1, Q8_0 only).
void gguf_quantize(GgufType t, const float* x, int64_t n, void* blocks);

}  // namespace tk
