// Owned storage of a weight matrix in any WeightFormat, and its conversion to/from fp32.
// Why separate from WeightView: the view is what kernels read (plain pointers); the store owns the
// tensors behind them and keeps the bitsandbytes statistics (double-quantized absmax) exactly as
// they were given, so they can be exported unchanged.
#pragma once
#include "../core/tensor.h"
#include "../backend/cpu/thread_pool.h"
#include "weights.h"

namespace tk {

struct WeightStore {
  WeightFormat format = WeightFormat::F32;
  int64_t rows = 0, cols = 0;
  int64_t blocksize = 64;    // NF4
  bool double_quant = false;  // NF4
  Tensor data;     // f32/bf16/f16 elements, NF4 codes or GGUF blocks (u8)
  Tensor absmax;   // NF4: fp32 absmax per block (resolved from the double quantization if any)
  Tensor qabsmax;  // NF4 double quant: u8 code per block
  Tensor absmax2;  // NF4 double quant: fp32 per 256 blocks
  float offset = 0.0f;

  WeightView view() const;
};

// Quantizes (or converts) an fp32 matrix; NaN or Inf in `w` is an InvalidArgument error.
WeightStore quantize_weights(const float* w, int64_t rows, int64_t cols, WeightFormat format, int64_t blocksize,
                             bool double_quant);

// Checks that the parts of `s` have the sizes its format and shape need, and resolves the NF4
// absmax from double-quantized statistics. Throws InvalidArgument naming the part.
void validate_weights(WeightStore& s);

// The whole matrix in fp32 (for export and tests; kernels decode panel by panel instead), rows
// split across the pool.
void dequantize_weights(const WeightStore& s, float* out, ThreadPool& pool);

bool parse_weight_format(const std::string& name, WeightFormat* out);

}  // namespace tk
