// A read-only view of a row-major weight matrix in any storage format the GEMM accepts: plain data
// (where it lives is its backend's business; decoding it is an op: OpTable::embedding_forward,
// and the CPU's decode_weights in backend/cpu/kernels.h).
// Why: frozen weights stay compressed (bf16, f16, NF4, GGUF blocks) and are decoded a panel at a
// time inside the GEMM's packing step, so the full-precision matrix never exists in memory.
#pragma once
#include <cstdint>

#include "gguf_quant.h"

namespace tk {

enum class WeightFormat { F32, BF16, F16, NF4, Q4_0, Q4_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, Q5_0, Q5_1, IQ4_NL, IQ4_XS };

const char* weight_format_name(WeightFormat f);

// The GGUF block formats, in GgufType's order from Q4_0 on.
TK_HOST_DEVICE inline bool is_gguf(WeightFormat f) { return f >= WeightFormat::Q4_0; }
TK_HOST_DEVICE inline GgufType gguf_type(WeightFormat f) {
  return static_cast<GgufType>(static_cast<int>(f) - static_cast<int>(WeightFormat::Q4_0));
}

struct WeightView {
  WeightFormat format = WeightFormat::F32;
  int64_t rows = 0, cols = 0;
  const void* data = nullptr;  // dense: elements, row stride `ld`; NF4: packed codes; GGUF: blocks
  int64_t ld = 0;              // dense formats only
  const float* absmax = nullptr;  // NF4: fp32 absmax per block (double quant resolved at load)
  int64_t blocksize = 64;         // NF4 block size
};

// Bytes of w.data a view reads (dense: up to its last row's last element), and its NF4 absmax
// count (0 for other formats): what a device backend copies when it places the weight.
int64_t weight_data_bytes(const WeightView& w);
int64_t weight_absmax_count(const WeightView& w);

}  // namespace tk
