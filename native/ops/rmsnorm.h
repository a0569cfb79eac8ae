// RMSNorm (Llama, Mistral, Qwen2): y = x / sqrt(mean(x²) + eps) * w, per row.
// Backward: with r = 1/sqrt(mean(x²) + eps) and g = dy ⊙ w,
//   dx = r · (g − x · r² · mean(g ⊙ x)),   dw += Σ_rows dy ⊙ x · r.
#pragma once
#include <cstdint>

#include "../core/thread_pool.h"

namespace tk {

void rmsnorm_forward(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* y, ThreadPool& pool);

// dx [rows, dim] is written — plus `residual` [rows, dim] when given (the gradient arriving by a
// skip connection, added in the same pass); dw [dim] is accumulated into unless null.
void rmsnorm_backward(const float* x, const float* w, const float* dy, int64_t rows, int64_t dim, float eps, float* dx,
                      float* dw, ThreadPool& pool, const float* residual = nullptr);

}  // namespace tk
