// RMSNorm (Llama, Mistral, Qwen2): y = x / sqrt(mean(x²) + eps) * w, per row.
// Backward: with r = 1/sqrt(mean(x²) + eps) and g = dy ⊙ w,
//   dx = r · (g − x · r² · mean(g ⊙ x)),   dw += Σ_rows dy ⊙ x · r.
#pragma once
#include <cstdint>


namespace tk {

// The ops: OpTable::rmsnorm_forward, rmsnorm_backward (dx written, plus `residual` when given: the
// gradient arriving by a skip connection, added in the same pass; dw accumulated unless null).
// The CPU's in backend/cpu/rmsnorm.cc.

}  // namespace tk
