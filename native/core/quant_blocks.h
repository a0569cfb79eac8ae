// Block layouts of the 4- and 8-bit weight formats, defined once for every backend (CPU now, CUDA
// later). GGUF blocks are byte-exact with llama.cpp's ggml-common.h; NF4 follows bitsandbytes.
#pragma once
#include <cstdint>

namespace tk {

// ---- GGUF (llama.cpp): 32 weights per block, fp16 scales ----
constexpr int kGgufBlock = 32;

struct BlockQ4_0 {  // w = (q - 8) * d
  uint16_t d;       // fp16 scale
  uint8_t qs[16];   // element j in the low nibble of qs[j], element j+16 in the high nibble
};
struct BlockQ4_1 {  // w = q * d + m
  uint16_t d, m;    // fp16 scale and minimum
  uint8_t qs[16];   // same nibble order as Q4_0
};
struct BlockQ8_0 {  // w = q * d
  uint16_t d;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ4_0) == 18, "BlockQ4_0 must match ggml's block_q4_0");
static_assert(sizeof(BlockQ4_1) == 20, "BlockQ4_1 must match ggml's block_q4_1");
static_assert(sizeof(BlockQ8_0) == 34, "BlockQ8_0 must match ggml's block_q8_0");

// ---- NF4 (bitsandbytes): blocks of `blocksize` weights, one fp32 absmax each ----
// w = kNf4Code[q] * absmax. Two codes per byte, the first element in the high nibble.
constexpr float kNf4Code[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};
// Double quantization stores absmax - mean(absmax) as 8-bit codes of bitsandbytes' signed
// dynamic map, in blocks of 256 with an fp32 absmax each.
constexpr int kNf4DoubleQuantBlock = 256;
extern const float kBnbDynamicMap[256];

inline bool valid_nf4_blocksize(int64_t b) { return b >= 32 && b <= 4096 && (b & (b - 1)) == 0; }

}  // namespace tk
