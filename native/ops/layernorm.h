// LayerNorm (GPT-2): y = (x − mean) / sqrt(var + eps) · w + b, per row. Forward only for now.
#pragma once
#include <cstdint>

#include "../core/thread_pool.h"

namespace tk {

void layernorm_forward(const float* x, const float* w, const float* b, int64_t rows, int64_t dim, float eps, float* y,
                       ThreadPool& pool);

}  // namespace tk
