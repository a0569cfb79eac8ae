// NF4 weights decoded with AVX2 or AVX-512 (kernels/nf4_walk.h). Why: QLoRA keeps no bf16 panels
// (that would undo its memory saving), so every frozen product decodes its NF4 weights again, and
// the scalar pair-table loop (ops/nf4.cc) took 3.7% of the SmolLM2-135M QLoRA step on a Zen 3.
// Each value is nf4_dequantize's own fp32 product, code times absmax, so they agree bit for bit
// (test/nf4.test.ts holds them to bitsandbytes). Call only where cpu_features() has the ISA.
#pragma once
#include <cstdint>

namespace tk {
namespace cpu {

// As nf4_dequantize: out[i] = W[start + i] for i < count, any start and count.
void nf4_dequantize_avx2(const uint8_t* codes, const float* absmax, int64_t blocksize, int64_t start, int64_t count,
                         float* out);
void nf4_dequantize_avx512(const uint8_t* codes, const float* absmax, int64_t blocksize, int64_t start, int64_t count,
                           float* out);

}  // namespace cpu
}  // namespace tk
