// GELU, tanh approximation (GPT-2's "gelu_new"):
//   gelu(x) = ½·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³)
//   gelu'(x) = ½·(1 + tanh(u)) + ½·x·(1 − tanh²(u))·√(2/π)·(1 + 3·0.044715·x²)
#pragma once
#include <cstdint>

#include "../core/thread_pool.h"

namespace tk {

float gelu_tanh(float x);
void gelu_forward(const float* x, int64_t n, float* y, ThreadPool& pool);
// dx = dy ⊙ gelu'(x)
void gelu_backward(const float* x, const float* dy, int64_t n, float* dx, ThreadPool& pool);

}  // namespace tk
