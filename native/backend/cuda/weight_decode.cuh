// One element of a weight matrix decoded on the GPU, for the formats the CUDA backend keeps
// compressed (CudaBackend::place expands the others to bf16): the block layouts are
// core/quant_blocks.h's, shared with the CPU; the arithmetic groups the products as the CPU's
// decode does (ops/gguf_quant.cc, ops/nf4.cc), so both give the same fp32 values.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../../core/quant_blocks.h"
#include "../../ops/weights.h"

namespace tk {
namespace cuda {

static __constant__ float kNf4CodeDevice[16] = {TK_NF4_CODE_VALUES};

__device__ inline float f16_bits(uint16_t h) { return __half2float(__ushort_as_half(h)); }

// Element (row, col) of w.
__device__ inline float decode_at(const WeightView& w, int64_t row, int64_t col) {
  switch (w.format) {
    case WeightFormat::F32: return static_cast<const float*>(w.data)[row * w.ld + col];
    case WeightFormat::BF16: return __uint_as_float(static_cast<uint32_t>(static_cast<const uint16_t*>(w.data)[row * w.ld + col]) << 16);
    case WeightFormat::F16: return f16_bits(static_cast<const uint16_t*>(w.data)[row * w.ld + col]);
    case WeightFormat::NF4: {
      const int64_t e = row * w.cols + col;
      const uint8_t byte = static_cast<const uint8_t*>(w.data)[e / 2];
      return kNf4CodeDevice[(e & 1) ? (byte & 0x0f) : (byte >> 4)] * w.absmax[e / w.blocksize];
    }
    case WeightFormat::Q4_0: {
      const int64_t e = row * w.cols + col;
      const auto& b = static_cast<const BlockQ4_0*>(w.data)[e / kGgufBlock];
      const int j = static_cast<int>(e % kGgufBlock);
      const int q = j < 16 ? (b.qs[j] & 0x0f) : (b.qs[j - 16] >> 4);
      return static_cast<float>(q - 8) * f16_bits(b.d);
    }
    case WeightFormat::Q4_1: {
      const int64_t e = row * w.cols + col;
      const auto& b = static_cast<const BlockQ4_1*>(w.data)[e / kGgufBlock];
      const int j = static_cast<int>(e % kGgufBlock);
      const int q = j < 16 ? (b.qs[j] & 0x0f) : (b.qs[j - 16] >> 4);
      return static_cast<float>(q) * f16_bits(b.d) + f16_bits(b.m);
    }
    case WeightFormat::Q8_0: {
      const int64_t e = row * w.cols + col;
      const auto& b = static_cast<const BlockQ8_0*>(w.data)[e / kGgufBlock];
      return static_cast<float>(b.qs[e % kGgufBlock]) * f16_bits(b.d);
    }
    default: return __int_as_float(0x7fc00000);  // never placed on the device in this format
  }
}

}  // namespace cuda
}  // namespace tk
