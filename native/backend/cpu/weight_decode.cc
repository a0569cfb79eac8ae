// Decoding a weight matrix's elements to fp32 on the CPU, from any WeightFormat: the GEMM's
// packing step, the embedding gather and dequantize_weights all read weights through this.
#include <cstring>

#include "../../core/float16.h"
#include "../../ops/gguf_quant.h"
#include "../../ops/nf4.h"
#include "kernels.h"

namespace tk {
namespace cpu {

void decode_weights(const WeightView& w, int64_t row, int64_t col, int64_t count, float* out) {
  switch (w.format) {
    case WeightFormat::F32:
      std::memcpy(out, static_cast<const float*>(w.data) + row * w.ld + col, count * sizeof(float));
      return;
    case WeightFormat::BF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + row * w.ld + col;
      for (int64_t i = 0; i < count; ++i) out[i] = bf16_to_float(src[i]);
      return;
    }
    case WeightFormat::F16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + row * w.ld + col;
      for (int64_t i = 0; i < count; ++i) out[i] = f16_to_float(src[i]);
      return;
    }
    case WeightFormat::NF4:
      nf4_dequantize(static_cast<const uint8_t*>(w.data), w.absmax, w.blocksize, row * w.cols + col, count, out);
      return;
    default: return gguf_dequantize(gguf_type(w.format), w.data, row * w.cols + col, count, out);
  }
}

}  // namespace cpu
}  // namespace tk
