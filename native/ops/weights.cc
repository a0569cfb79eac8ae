#include "weights.h"

#include <cstring>

#include "../core/float16.h"
#include "nf4.h"

namespace tk {

const char* weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::F32: return "f32";
    case WeightFormat::BF16: return "bf16";
    case WeightFormat::F16: return "f16";
    case WeightFormat::NF4: return "nf4";
    case WeightFormat::Q4_0: return "q4_0";
    case WeightFormat::Q4_1: return "q4_1";
    case WeightFormat::Q8_0: return "q8_0";
  }
  return "?";
}

void WeightView::decode(int64_t row, int64_t col, int64_t count, float* out) const {
  switch (format) {
    case WeightFormat::F32:
      std::memcpy(out, static_cast<const float*>(data) + row * ld + col, count * sizeof(float));
      return;
    case WeightFormat::BF16: {
      const uint16_t* src = static_cast<const uint16_t*>(data) + row * ld + col;
      for (int64_t i = 0; i < count; ++i) out[i] = bf16_to_float(src[i]);
      return;
    }
    case WeightFormat::F16: {
      const uint16_t* src = static_cast<const uint16_t*>(data) + row * ld + col;
      for (int64_t i = 0; i < count; ++i) out[i] = f16_to_float(src[i]);
      return;
    }
    case WeightFormat::NF4:
      nf4_dequantize(static_cast<const uint8_t*>(data), absmax, blocksize, row * cols + col, count, out);
      return;
    case WeightFormat::Q4_0: return gguf_dequantize(GgufType::Q4_0, data, row * cols + col, count, out);
    case WeightFormat::Q4_1: return gguf_dequantize(GgufType::Q4_1, data, row * cols + col, count, out);
    case WeightFormat::Q8_0: return gguf_dequantize(GgufType::Q8_0, data, row * cols + col, count, out);
  }
}

}  // namespace tk
