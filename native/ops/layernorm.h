// LayerNorm (GPT-2): y = (x − mean) / sqrt(var + eps) · w + b, per row, and its backward:
//   x̂ = (x − mean)·rstd,  dx̂ = dy ⊙ w,  dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ ⊙ x̂)),
//   dw += Σ_rows dy ⊙ x̂,  db += Σ_rows dy   (both optional: frozen norms pass null).
#pragma once
#include <cstdint>


namespace tk {

// The ops: OpTable::layernorm_forward, layernorm_backward; the CPU's in backend/cpu/layernorm.cc.

}  // namespace tk
