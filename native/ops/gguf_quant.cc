#include "gguf_quant.h"

#include <algorithm>
#include <cmath>

#include "../core/float16.h"

namespace tk {
namespace {

void dequantize_block(GgufType t, const uint8_t* block, float out[kGgufBlock]) {
  switch (t) {
    case GgufType::Q4_0: {
      auto* b = reinterpret_cast<const BlockQ4_0*>(block);
      const float d = f16_to_float(b->d);
      for (int j = 0; j < 16; ++j) {
        out[j] = static_cast<float>((b->qs[j] & 0x0f) - 8) * d;
        out[j + 16] = static_cast<float>((b->qs[j] >> 4) - 8) * d;
      }
      return;
    }
    case GgufType::Q4_1: {
      auto* b = reinterpret_cast<const BlockQ4_1*>(block);
      const float d = f16_to_float(b->d), m = f16_to_float(b->m);
      for (int j = 0; j < 16; ++j) {
        out[j] = static_cast<float>(b->qs[j] & 0x0f) * d + m;
        out[j + 16] = static_cast<float>(b->qs[j] >> 4) * d + m;
      }
      return;
    }
    case GgufType::Q8_0: {
      auto* b = reinterpret_cast<const BlockQ8_0*>(block);
      const float d = f16_to_float(b->d);
      for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(b->qs[j]) * d;
      return;
    }
  }
}

}  // namespace

int64_t gguf_block_bytes(GgufType t) {
  switch (t) {
    case GgufType::Q4_0: return sizeof(BlockQ4_0);
    case GgufType::Q4_1: return sizeof(BlockQ4_1);
    case GgufType::Q8_0: return sizeof(BlockQ8_0);
  }
  return 0;
}

void gguf_dequantize(GgufType t, const void* blocks, int64_t start, int64_t count, float* out) {
  const auto* base = static_cast<const uint8_t*>(blocks);
  const int64_t bytes = gguf_block_bytes(t);
  float tmp[kGgufBlock];
  int64_t i = 0;
  while (i < count) {
    const int64_t e = start + i, block = e / kGgufBlock, offset = e % kGgufBlock;
    const int64_t take = std::min<int64_t>(kGgufBlock - offset, count - i);
    if (offset == 0 && take == kGgufBlock) {
      dequantize_block(t, base + block * bytes, out + i);
    } else {
      dequantize_block(t, base + block * bytes, tmp);
      std::copy(tmp + offset, tmp + offset + take, out + i);
    }
    i += take;
  }
}

void gguf_quantize(GgufType t, const float* x, int64_t n, void* blocks) {
  auto* out = static_cast<uint8_t*>(blocks);
  for (int64_t blk = 0; blk < n / kGgufBlock; ++blk) {
    const float* v = x + blk * kGgufBlock;
    uint8_t* dst = out + blk * gguf_block_bytes(t);
    switch (t) {
      case GgufType::Q4_0: {  // the value of largest magnitude maps to -8
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; ++j)
          if (std::fabs(v[j]) > amax) amax = std::fabs(v[j]), max = v[j];
        const float d = max / -8.0f, id = d ? 1.0f / d : 0.0f;
        auto* b = reinterpret_cast<BlockQ4_0*>(dst);
        b->d = float_to_f16(d);
        for (int j = 0; j < 16; ++j) {
          const uint8_t x0 = std::min<uint8_t>(15, static_cast<uint8_t>(static_cast<int8_t>(v[j] * id + 8.5f)));
          const uint8_t x1 = std::min<uint8_t>(15, static_cast<uint8_t>(static_cast<int8_t>(v[j + 16] * id + 8.5f)));
          b->qs[j] = static_cast<uint8_t>(x0 | (x1 << 4));
        }
        break;
      }
      case GgufType::Q4_1: {
        float mn = v[0], mx = v[0];
        for (int j = 1; j < 32; ++j) mn = std::min(mn, v[j]), mx = std::max(mx, v[j]);
        const float d = (mx - mn) / 15.0f, id = d ? 1.0f / d : 0.0f;
        auto* b = reinterpret_cast<BlockQ4_1*>(dst);
        b->d = float_to_f16(d);
        b->m = float_to_f16(mn);
        for (int j = 0; j < 16; ++j) {
          const uint8_t x0 = std::min<uint8_t>(15, static_cast<uint8_t>(static_cast<int8_t>((v[j] - mn) * id + 0.5f)));
          const uint8_t x1 = std::min<uint8_t>(15, static_cast<uint8_t>(static_cast<int8_t>((v[j + 16] - mn) * id + 0.5f)));
          b->qs[j] = static_cast<uint8_t>(x0 | (x1 << 4));
        }
        break;
      }
      case GgufType::Q8_0: {
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(v[j]));
        const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        auto* b = reinterpret_cast<BlockQ8_0*>(dst);
        b->d = float_to_f16(d);
        for (int j = 0; j < 32; ++j) b->qs[j] = static_cast<int8_t>(std::lround(v[j] * id));
        break;
      }
    }
  }
}

}  // namespace tk
