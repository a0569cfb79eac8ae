// SwiGLU gate of the Llama MLP: a = silu(g) ⊙ u with silu(g) = g·σ(g).
// Backward: dg = da ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))), du = da ⊙ silu(g).
#pragma once
#include <cstdint>

#include "../core/cpu_features.h"
#include "../core/thread_pool.h"

namespace tk {

// isa picks the exp kernel (core/vexp.h); a may alias g.
void swiglu_forward(const float* g, const float* u, int64_t n, float* a, ThreadPool& pool, Isa isa = Isa::Scalar);
void swiglu_backward(const float* g, const float* u, const float* da, int64_t n, float* dg, float* du, ThreadPool& pool,
                     Isa isa = Isa::Scalar);

}  // namespace tk
