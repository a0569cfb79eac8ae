// Decoding a weight matrix's elements to fp32 on the CPU, from any WeightFormat: the GEMM's
// packing step, the embedding gather and dequantize_weights all read weights through this.
#include <algorithm>
#include <atomic>
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
namespace {

std::atomic<Isa> decode_isa{best_isa(cpu_features())};

}  // namespace

void set_decode_isa(Isa isa) { decode_isa.store(std::min(isa, best_isa(cpu_features())), std::memory_order_relaxed); }

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
      const Isa isa = decode_isa.load(std::memory_order_relaxed);
      const auto decode = isa >= Isa::Avx512 ? nf4_dequantize_avx512 : isa >= Isa::Avx2 ? nf4_dequantize_avx2 : nf4_dequantize;
      decode(static_cast<const uint8_t*>(w.data), w.absmax, w.blocksize, row * w.cols + col, count, out);
      return;
    }
    default: {
      const int64_t start = row * w.cols + col;
      const Isa isa = decode_isa.load(std::memory_order_relaxed);
      if (isa < Isa::Avx2 || !has_kquant_vector(w.format)) return gguf_dequantize(gguf_type(w.format), w.data, start, count, out);
      const auto decode_whole = isa >= Isa::Avx512 ? decode_kquant_avx512 : decode_kquant_avx2;
      // Whole super-blocks through the vector decoder; a partial one at either end as stored.
      const GgufType t = gguf_type(w.format);
      const int64_t head = std::min<int64_t>(count, (kGgufSuperBlock - start % kGgufSuperBlock) % kGgufSuperBlock);
      if (head) gguf_dequantize(t, w.data, start, head, out);
      const int64_t whole = (count - head) / kGgufSuperBlock;
      decode_whole(w.format, static_cast<const uint8_t*>(w.data) + (start + head) / kGgufSuperBlock * gguf_block_bytes(t), whole, out + head);
      const int64_t done = head + whole * kGgufSuperBlock;
      if (done < count) gguf_dequantize(t, w.data, start + done, count - done, out + done);
      return;
    }
  }
}

}  // namespace cpu
}  // namespace tk
