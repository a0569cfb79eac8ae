// Causal grouped-query attention, forward: q [n, Hq, d] for positions offset..offset+n-1, k and v
// [offset + n, Hkv, d] (a KV cache followed by the new tokens) -> out [n, Hq, d]; query head h
// attends with key/value head h / (Hq / Hkv), scores scaled by 1/sqrt(d), softmax over s <= pos.
// Each head is two GEMMs around a row softmax (S = Q·Kᵀ, O = P·V); the full score matrix is
// materialized per head, which is fine at training lengths here — a flash-style blocked kernel that
// skips the masked half is the next step for long contexts. bf16: the GEMMs round their operands
// to bf16 (fp32 accumulation); the softmax stays fp32.
#pragma once
#include <cstdint>

#include "../core/cpu_features.h"
#include "../core/thread_pool.h"

namespace tk {

// window > 0: sliding-window attention (Mistral): query at position p sees keys p − window + 1 .. p.
void attention_causal_forward(const float* q, const float* k, const float* v, int64_t n, int64_t offset,
                              int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* out, Isa isa, ThreadPool& pool,
                              bool bf16 = false, int64_t window = 0);

// Backward of the above without a cache (offset 0): recomputes the softmax rows, then
//   dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dO ⊙ O)), dQ = scale·dS·K, dK = scale·dSᵀ·Q, dV = Pᵀ·dO,
// summing dK, dV over the query heads that share a key/value head (in head order, so results are
// deterministic). dq, dk, dv are written.
void attention_causal_backward(const float* q, const float* k, const float* v, const float* dout, int64_t n,
                               int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* dq, float* dk, float* dv,
                               Isa isa, ThreadPool& pool, bool bf16 = false, int64_t window = 0);

}  // namespace tk
