#include "weights.h"


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

}  // namespace tk
