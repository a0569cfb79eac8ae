// SwiGLU gate of the Llama MLP: a = silu(g) ⊙ u with silu(g) = g·σ(g).
// Backward: dg = da ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))), du = da ⊙ silu(g).
#pragma once

namespace tk {

// The ops: OpTable::swiglu_forward (a may alias g), swiglu_backward; the CPU's in backend/cpu/swiglu.cc.

}  // namespace tk
