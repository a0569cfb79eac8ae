// AdamW (decoupled weight decay), exactly PyTorch's torch.optim.AdamW step order:
//   p ← p·(1 − lr·wd);  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;
//   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
// State is fp32 and element-wise, so any contiguous range of parameters can be stepped on its own:
// the sharded (ZeRO-style) optimizer will give each rank a range.
#pragma once
#include <cstdint>

#include "../core/thread_pool.h"

namespace tk {

struct AdamWConfig {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.01f;
};

// One step (t >= 1 counts steps taken, this one included) over n parameters, with the gradient
// taken as grad · grad_scale (how the optimizer turns sums into the clipped mean without a pass
// of its own); split across the pool when given (element-wise: any split gives the same result).
void adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWConfig& cfg, int64_t t,
                ThreadPool* pool = nullptr, float grad_scale = 1.0f);

// Σ g² over n values, in fp64 (for the global gradient norm): fixed chunks of 64Ki values summed
// on any thread, then added in chunk order, so the result does not depend on the thread count.
double sum_of_squares(const float* g, int64_t n, ThreadPool* pool = nullptr);

}  // namespace tk
