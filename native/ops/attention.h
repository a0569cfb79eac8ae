// Causal grouped-query attention, forward: q [n, Hq, d], k and v [n, Hkv, d] -> out [n, Hq, d],
// query head h attending with key/value head h / (Hq / Hkv), scores scaled by 1/sqrt(d), softmax
// over positions s <= t. Plain loops over heads in parallel: prompt lengths here are short; the
// blocked (flash-style) kernel and the backward come with training.
#pragma once
#include <cstdint>

#include "../core/thread_pool.h"

namespace tk {

void attention_causal_forward(const float* q, const float* k, const float* v, int64_t n, int64_t q_heads,
                              int64_t kv_heads, int64_t head_dim, float* out, ThreadPool& pool);

}  // namespace tk
