// GGUF block quantization Q4_0, Q4_1, Q8_0 — dequantized exactly as llama.cpp's
// dequantize_row_*, quantized as its quantize_row_*_ref (used to make test and bench weights).
#pragma once
#include <cstdint>

#include "../core/quant_blocks.h"

namespace tk {

enum class GgufType { Q4_0, Q4_1, Q8_0 };

int64_t gguf_block_bytes(GgufType t);

// out[i] = W[start + i]; `blocks` points at the block holding element 0 of the tensor.
void gguf_dequantize(GgufType t, const void* blocks, int64_t start, int64_t count, float* out);

// Quantizes n (a multiple of 32) values into n / 32 blocks.
void gguf_quantize(GgufType t, const float* x, int64_t n, void* blocks);

}  // namespace tk
