// RMSNorm (Llama, Mistral, Qwen2): y = x / sqrt(mean(x²) + eps) * w, per row.
// Forward only for now; the backward comes with training through the model engine.
#pragma once
#include <cstdint>

#include "../core/thread_pool.h"

namespace tk {

void rmsnorm_forward(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* y, ThreadPool& pool);

}  // namespace tk
