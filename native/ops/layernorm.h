// LayerNorm (GPT-2): y = (x − mean) / sqrt(var + eps) · w + b, per row, and its backward:
//   x̂ = (x − mean)·rstd,  dx̂ = dy ⊙ w,  dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ ⊙ x̂)),
//   dw += Σ_rows dy ⊙ x̂,  db += Σ_rows dy   (both optional: frozen norms pass null).
#pragma once
#include <cstdint>

#include "../core/thread_pool.h"

namespace tk {

void layernorm_forward(const float* x, const float* w, const float* b, int64_t rows, int64_t dim, float eps, float* y,
                       ThreadPool& pool);

void layernorm_backward(const float* x, const float* w, const float* dy, int64_t rows, int64_t dim, float eps, float* dx,
                        float* dw, float* db, ThreadPool& pool);

}  // namespace tk
