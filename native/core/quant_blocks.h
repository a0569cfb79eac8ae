// Block layouts of the 4- and 8-bit weight formats, defined once for every backend (CPU now, CUDA
// later). GGUF blocks are byte-exact with llama.cpp's ggml-common.h; NF4 follows bitsandbytes.
#pragma once
#include <cstdint>

#include "host_device.h"

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
struct BlockQ5_0 {  // w = (q - 16) * d, q = nibble | bit << 4
  uint16_t d;
  uint8_t qh[4];    // bit j (little-endian uint32): the fifth bit of element j
  uint8_t qs[16];   // nibbles as Q4_0
};
struct BlockQ5_1 {  // w = q * d + m
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18, "BlockQ4_0 must match ggml's block_q4_0");
static_assert(sizeof(BlockQ5_0) == 22, "BlockQ5_0 must match ggml's block_q5_0");
static_assert(sizeof(BlockQ5_1) == 24, "BlockQ5_1 must match ggml's block_q5_1");
static_assert(sizeof(BlockQ4_1) == 20, "BlockQ4_1 must match ggml's block_q4_1");
static_assert(sizeof(BlockQ8_0) == 34, "BlockQ8_0 must match ggml's block_q8_0");

// ---- GGUF K-quants (llama.cpp): super-blocks of 256 weights in sub-blocks of 16 or 32, each
// with its own 4-, 6- or 8-bit scale (and minimum) under the super-block's fp16 scales ----
constexpr int kGgufSuperBlock = 256;

struct BlockQ2_K {      // sub-block j of 16: w = d·(scales[j] & 15)·q − dmin·(scales[j] >> 4), q 2-bit
  uint8_t scales[16];
  uint8_t qs[64];       // element 128h + 32s + l: bits 2s of qs[32h + l]
  uint16_t d, dmin;
};
struct BlockQ3_K {      // sub-block j of 16: w = d·(s_j − 32)·(q − 4·!hbit), s_j 6-bit, q 2-bit
  uint8_t hmask[32];    // element 32b + l: bit b of hmask[l]
  uint8_t qs[64];       // as Q2_K
  uint8_t scales[12];   // s_j: low 4 bits from scales[j % 8] (nibble j / 8), high 2 from scales[8 + j % 4] (bits 2·(j / 4))
  uint16_t d;
};
struct BlockQ4_K {      // sub-block j of 32: w = d·sc_j·q − dmin·m_j, sc and m 6-bit, q 4-bit
  uint16_t d, dmin;
  uint8_t scales[12];   // sc_j, m_j for j < 4: scales[j], scales[4 + j] (low 6 bits); j >= 4: nibbles of scales[4 + j] plus the top bits of scales[j - 4], scales[j]
  uint8_t qs[128];      // element 64c + 32n + l: nibble n of qs[32c + l]
};
// The 6-bit scale and minimum of sub-block j (of 8) of a Q4_K / Q5_K super-block: every decoder
// (scalar, each vector ISA, CUDA) reads them through this one definition.
TK_HOST_DEVICE inline void kquant_scale_min(const uint8_t* q, int j, float& sc, float& m) {
  if (j < 4) {
    sc = static_cast<float>(q[j] & 63), m = static_cast<float>(q[j + 4] & 63);
  } else {
    sc = static_cast<float>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    m = static_cast<float>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}
struct BlockQ5_K {      // as Q4_K with a fifth bit: q = nibble | (bit j of qh[l]) << 4
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
struct BlockQ6_K {      // sub-block j of 16: w = d·scales[j]·(q − 32), q 6-bit
  uint8_t ql[128];      // element 128h + 64n + l: nibble n of ql[64h + l] (low 4 bits of q)
  uint8_t qh[64];       // element 128h + 32s + l: bits 2s of qh[32h + l] (high 2 bits of q)
  int8_t scales[16];
  uint16_t d;
};
struct BlockQ8_K {      // w = d·q (llama.cpp's intermediate format; rare in files)
  float d;
  int8_t qs[256];
  int16_t bsums[16];    // sums of groups of 16 (unused when decoding)
};
static_assert(sizeof(BlockQ2_K) == 84, "BlockQ2_K must match ggml's block_q2_K");
static_assert(sizeof(BlockQ3_K) == 110, "BlockQ3_K must match ggml's block_q3_K");
static_assert(sizeof(BlockQ4_K) == 144, "BlockQ4_K must match ggml's block_q4_K");
static_assert(sizeof(BlockQ5_K) == 176, "BlockQ5_K must match ggml's block_q5_K");
static_assert(sizeof(BlockQ6_K) == 210, "BlockQ6_K must match ggml's block_q6_K");
static_assert(sizeof(BlockQ8_K) == 292, "BlockQ8_K must match ggml's block_q8_K");

// ---- IQ4_NL / IQ4_XS (llama.cpp's non-linear 4-bit): each 4-bit code picks one of 16 levels ----
// w = d·kIq4NlLevels[q]. Elements j and j + 16 of a 32-element group share byte j (low, high nibble).
#define TK_IQ4_NL_LEVEL_VALUES -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113
constexpr int8_t kIq4NlLevels[16] = {TK_IQ4_NL_LEVEL_VALUES};
struct BlockIQ4_NL {    // 32 elements
  uint16_t d;
  uint8_t qs[16];
};
struct BlockIQ4_XS {    // 256 elements in 8 groups of 32; group g: w = d·(scale_g − 32)·level[q]
  uint16_t d;
  uint16_t scales_h;    // bits 2g..2g+1: the high 2 bits of scale_g
  uint8_t scales_l[4];  // nibble g % 2 of scales_l[g / 2]: the low 4 bits of scale_g
  uint8_t qs[128];      // group g: qs[16g..16g+15]
};
static_assert(sizeof(BlockIQ4_NL) == 18, "BlockIQ4_NL must match ggml's block_iq4_nl");
static_assert(sizeof(BlockIQ4_XS) == 136, "BlockIQ4_XS must match ggml's block_iq4_xs");

// ---- NF4 (bitsandbytes): blocks of `blocksize` weights, one fp32 absmax each ----
// w = kNf4Code[q] * absmax. Two codes per byte, the first element in the high nibble.
// (The values as a list, so that the CUDA backend's __constant__ copy is this one definition.)
#define TK_NF4_CODE_VALUES \
   -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, \
   -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f, \
   0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f, \
   0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
constexpr float kNf4Code[16] = {TK_NF4_CODE_VALUES};
// Double quantization stores absmax - mean(absmax) as 8-bit codes of bitsandbytes' signed
// dynamic map, in blocks of 256 with an fp32 absmax each.
constexpr int kNf4DoubleQuantBlock = 256;
extern const float kBnbDynamicMap[256];

inline bool valid_nf4_blocksize(int64_t b) { return b >= 32 && b <= 4096 && (b & (b - 1)) == 0; }

}  // namespace tk
