// Whole K-quant super-blocks (Q4_K, Q5_K, Q6_K: the bulk of a Q4_K_M / Q5_K_M file) decoded with
// AVX-512 or AVX2. Why: the GEMM's packing step decodes every weight once per product, and with the
// scalar decoder a Q6_K product in bf16 ran at 0.37-0.70 of the same product with bf16 weights
// (npm run bench -- gemm). The products are gguf_quant.cc's, in its order and with no fused
// multiply-add, so the values are the same bits (test/kquants.test.ts holds them to gguf-py's).
// Call each only where cpu_features() has its ISA.
#pragma once
#include <cstdint>

#include "../../ops/weights.h"

namespace tk {
namespace cpu {

// Whether `format` has vector decoders here (the same formats on both ISAs).
bool has_kquant_vector(WeightFormat format);
// blocks: `count` whole super-blocks of `format`; out: count · 256 values.
void decode_kquant_avx512(WeightFormat format, const void* blocks, int64_t count, float* out);
void decode_kquant_avx2(WeightFormat format, const void* blocks, int64_t count, float* out);

}  // namespace cpu
}  // namespace tk
