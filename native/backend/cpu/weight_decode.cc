// Decoding a weight matrix's elements to fp32 on the CPU, from any WeightFormat: the GEMM's
// packing step, the embedding gather and dequantize_weights all read weights through this.
#include <algorithm>
#include <cstring>

#include "../../core/float16.h"
#include "../../ops/gguf_quant.h"
#include "../../ops/nf4.h"
#include "cpu_features.h"
#include "kernels.h"
#include "kquant_decode.h"
#include "nf4_decode.h"

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
    case WeightFormat::NF4: {
      static const bool avx2 = cpu_features().avx2;
      (avx2 ? nf4_dequantize_avx2 : nf4_dequantize)(static_cast<const uint8_t*>(w.data), w.absmax, w.blocksize,
                                                   row * w.cols + col, count, out);
      return;
    }
    default: {
      const int64_t start = row * w.cols + col;
      static const bool avx512 = cpu_features().avx512f;
      if (!avx512 || !has_kquant_avx512(w.format)) return gguf_dequantize(gguf_type(w.format), w.data, start, count, out);
      // Whole super-blocks through the vector decoder; a partial one at either end as stored.
      const GgufType t = gguf_type(w.format);
      const int64_t head = std::min<int64_t>(count, (kGgufSuperBlock - start % kGgufSuperBlock) % kGgufSuperBlock);
      if (head) gguf_dequantize(t, w.data, start, head, out);
      const int64_t whole = (count - head) / kGgufSuperBlock;
      decode_kquant_avx512(w.format, static_cast<const uint8_t*>(w.data) + (start + head) / kGgufSuperBlock * gguf_block_bytes(t), whole, out + head);
      const int64_t done = head + whole * kGgufSuperBlock;
      if (done < count) gguf_dequantize(t, w.data, start + done, count - done, out + done);
      return;
    }
  }
}

}  // namespace cpu
}  // namespace tk
