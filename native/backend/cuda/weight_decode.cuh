// One element of a weight matrix decoded on the GPU, for every WeightFormat: the block layouts
// are core/quant_blocks.h's, shared with the CPU, and the products are grouped as the CPU's decode
// groups them (ops/gguf_quant.cc, ops/nf4.cc), so both give the same fp32 values. Element by
// element (a GPU thread per element) where the CPU decodes a block at a time; so it is compiled
// for the host too, and a CUDA build checks it there against gguf-py's values without a GPU
// (cuda_decode_on_host, test/cuda-build.test.ts).
#pragma once
#include <cstring>

#include "../../core/float16.h"
#include "../../core/host_device.h"
#include "../../core/quant_blocks.h"
#include "../../ops/weights.h"

namespace tk {
namespace cuda {

static __constant__ float kNf4CodeDevice[16] = {TK_NF4_CODE_VALUES};
static __constant__ int8_t kIq4NlLevelsDevice[16] = {TK_IQ4_NL_LEVEL_VALUES};

TK_HOST_DEVICE inline float nf4_code(int q) {
#ifdef __CUDA_ARCH__
  return kNf4CodeDevice[q];
#else
  return kNf4Code[q];
#endif
}

TK_HOST_DEVICE inline float iq4_level(int q) {
#ifdef __CUDA_ARCH__
  return static_cast<float>(kIq4NlLevelsDevice[q]);
#else
  return static_cast<float>(kIq4NlLevels[q]);
#endif
}

TK_HOST_DEVICE inline float from_bits(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  return bits_to_float(u);
#endif
}

// fp16 bits to fp32 (exact both ways: every fp16 value is an fp32 value).
TK_HOST_DEVICE inline float half_bits(uint16_t h) {
#ifdef __CUDA_ARCH__
  return __half2float(__ushort_as_half(h));
#else
  return f16_to_float(h);
#endif
}

// Element e (< 32) of a 32-element IQ4 group: byte e holds e (low nibble), byte e - 16 holds e (high).
TK_HOST_DEVICE inline int iq4_code(const uint8_t* qs, int e) { return e < 16 ? (qs[e] & 0x0f) : (qs[e - 16] >> 4); }

// Element e of a GGUF block (e < its block's element count).
TK_HOST_DEVICE inline float gguf_element(WeightFormat f, const uint8_t* block, int e) {
  switch (f) {
    case WeightFormat::Q4_0: {
      auto* b = reinterpret_cast<const BlockQ4_0*>(block);
      return static_cast<float>(iq4_code(b->qs, e) - 8) * half_bits(b->d);
    }
    case WeightFormat::Q4_1: {
      auto* b = reinterpret_cast<const BlockQ4_1*>(block);
      return static_cast<float>(iq4_code(b->qs, e)) * half_bits(b->d) + half_bits(b->m);
    }
    case WeightFormat::Q8_0: {
      auto* b = reinterpret_cast<const BlockQ8_0*>(block);
      return static_cast<float>(b->qs[e]) * half_bits(b->d);
    }
    case WeightFormat::Q5_0:
    case WeightFormat::Q5_1: {
      const bool one = f == WeightFormat::Q5_1;
      auto* b0 = reinterpret_cast<const BlockQ5_0*>(block);
      auto* b1 = reinterpret_cast<const BlockQ5_1*>(block);
      const uint8_t* h = one ? b1->qh : b0->qh;
      const uint32_t qh = static_cast<uint32_t>(h[0]) | static_cast<uint32_t>(h[1]) << 8 | static_cast<uint32_t>(h[2]) << 16 |
                          static_cast<uint32_t>(h[3]) << 24;
      const int q = iq4_code(one ? b1->qs : b0->qs, e) | static_cast<int>((qh >> e) & 1) << 4;
      const float d = half_bits(one ? b1->d : b0->d);
      return one ? d * static_cast<float>(q) + half_bits(b1->m) : d * static_cast<float>(q - 16);
    }
    case WeightFormat::IQ4_NL: {
      auto* b = reinterpret_cast<const BlockIQ4_NL*>(block);
      return half_bits(b->d) * iq4_level(iq4_code(b->qs, e));
    }
    case WeightFormat::IQ4_XS: {
      auto* b = reinterpret_cast<const BlockIQ4_XS*>(block);
      const int g = e / 32;
      const int scale = ((b->scales_l[g / 2] >> (4 * (g % 2))) & 0x0f) | (((b->scales_h >> (2 * g)) & 3) << 4);
      return (half_bits(b->d) * static_cast<float>(scale - 32)) * iq4_level(iq4_code(b->qs + 16 * g, e % 32));
    }
    case WeightFormat::Q2_K: {
      auto* b = reinterpret_cast<const BlockQ2_K*>(block);
      const int h = e / 128, s = (e % 128) / 32, l = e % 32, sc = b->scales[e / 16];
      const float dl = half_bits(b->d) * static_cast<float>(sc & 0x0f), ml = half_bits(b->dmin) * static_cast<float>(sc >> 4);
      return dl * static_cast<float>((b->qs[32 * h + l] >> (2 * s)) & 3) - ml;
    }
    case WeightFormat::Q3_K: {
      auto* b = reinterpret_cast<const BlockQ3_K*>(block);
      const int j = e / 16, h = e / 128, s = (e % 128) / 32, l = e % 32;
      const int low_s = (b->scales[j % 8] >> (4 * (j / 8))) & 0x0f, high_s = (b->scales[8 + j % 4] >> (2 * (j / 4))) & 3;
      const float dl = half_bits(b->d) * static_cast<float>(static_cast<int8_t>(low_s | (high_s << 4)) - 32);
      const int low = (b->qs[32 * h + l] >> (2 * s)) & 3, hbit = (b->hmask[l] >> (e / 32)) & 1;
      return dl * static_cast<float>(low - (hbit ? 0 : 4));
    }
    case WeightFormat::Q4_K:
    case WeightFormat::Q5_K: {
      const bool five = f == WeightFormat::Q5_K;
      auto* b4 = reinterpret_cast<const BlockQ4_K*>(block);
      auto* b5 = reinterpret_cast<const BlockQ5_K*>(block);
      const int j = e / 32, l = e % 32;
      float sc, m;
      kquant_scale_min(five ? b5->scales : b4->scales, j, sc, m);
      const float dj = half_bits(five ? b5->d : b4->d) * sc, mj = half_bits(five ? b5->dmin : b4->dmin) * m;
      int q = ((five ? b5->qs : b4->qs)[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f;
      if (five) q |= ((b5->qh[l] >> j) & 1) << 4;
      return dj * static_cast<float>(q) - mj;
    }
    case WeightFormat::Q6_K: {
      auto* b = reinterpret_cast<const BlockQ6_K*>(block);
      const int h = e / 128, w = e % 128;
      const int low = (b->ql[64 * h + w % 64] >> (4 * (w / 64))) & 0x0f, high = (b->qh[32 * h + w % 32] >> (2 * (w / 32))) & 3;
      return half_bits(b->d) * static_cast<float>(b->scales[e / 16]) * static_cast<float>((low | (high << 4)) - 32);
    }
    case WeightFormat::Q8_K: {
      auto* b = reinterpret_cast<const BlockQ8_K*>(block);
      return b->d * static_cast<float>(b->qs[e]);
    }
    default: return from_bits(0x7fc00000u);  // not a block format
  }
}

// Element (row, col) of w.
TK_HOST_DEVICE inline float decode_at(const WeightView& w, int64_t row, int64_t col) {
  switch (w.format) {
    case WeightFormat::F32: return static_cast<const float*>(w.data)[row * w.ld + col];
    case WeightFormat::BF16: return from_bits(static_cast<uint32_t>(static_cast<const uint16_t*>(w.data)[row * w.ld + col]) << 16);
    case WeightFormat::F16: return half_bits(static_cast<const uint16_t*>(w.data)[row * w.ld + col]);
    case WeightFormat::NF4: {
      const int64_t e = row * w.cols + col;
      const uint8_t byte = static_cast<const uint8_t*>(w.data)[e / 2];
      return nf4_code((e & 1) ? (byte & 0x0f) : (byte >> 4)) * w.absmax[e / w.blocksize];
    }
    default: {
      const GgufType t = gguf_type(w.format);
      const int64_t e = row * w.cols + col, per = gguf_block_elements(t);
      return gguf_element(w.format, static_cast<const uint8_t*>(w.data) + (e / per) * gguf_block_bytes(t), static_cast<int>(e % per));
    }
  }
}

}  // namespace cuda
}  // namespace tk
