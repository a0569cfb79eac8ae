#include "weights.h"

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
    case WeightFormat::Q2_K: return "q2_k";
    case WeightFormat::Q3_K: return "q3_k";
    case WeightFormat::Q4_K: return "q4_k";
    case WeightFormat::Q5_K: return "q5_k";
    case WeightFormat::Q6_K: return "q6_k";
    case WeightFormat::Q8_K: return "q8_k";
    case WeightFormat::Q5_0: return "q5_0";
    case WeightFormat::Q5_1: return "q5_1";
    case WeightFormat::IQ4_NL: return "iq4_nl";
    case WeightFormat::IQ4_XS: return "iq4_xs";
  }
  return "?";
}

int64_t weight_data_bytes(const WeightView& w) {
  switch (w.format) {
    case WeightFormat::F32: return ((w.rows - 1) * w.ld + w.cols) * 4;
    case WeightFormat::BF16:
    case WeightFormat::F16: return ((w.rows - 1) * w.ld + w.cols) * 2;
    case WeightFormat::NF4: return (w.rows * w.cols + 1) / 2;
    default: return w.rows * w.cols / gguf_block_elements(gguf_type(w.format)) * gguf_block_bytes(gguf_type(w.format));
  }
}

int64_t weight_absmax_count(const WeightView& w) {
  return w.format == WeightFormat::NF4 ? nf4_blocks(w.rows * w.cols, w.blocksize) : 0;
}

}  // namespace tk
