// AdamW (decoupled weight decay), exactly PyTorch's torch.optim.AdamW step order:
//   p ← p·(1 − lr·wd);  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;
//   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
// State is fp32 and element-wise, so any contiguous range of parameters can be stepped on its own:
// the sharded (ZeRO-style) optimizer will give each rank a range.
#pragma once
#include <cstdint>

namespace tk {

struct AdamWConfig {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.01f;
};

// The ops (backend/backend.h; the CPU's in backend/cpu/adamw.cc):
// OpTable::adamw_step: one step (t >= 1 counts steps taken, this one included) over n
// parameters, with the gradient taken as grad · grad_scale (how the optimizer turns sums into the
// clipped mean without a pass of its own); element-wise, so any split gives the same result.
// OpTable::sum_squares_chunks: Σ g² in fp64 over each chunk of `chunk` values (the last may be
// shorter), written to a host array; the caller adds them in chunk order, so the global gradient
// norm does not depend on the thread count or, with fixed chunk positions, the world size.

}  // namespace tk
