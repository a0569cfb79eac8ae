// GELU, tanh approximation (GPT-2's "gelu_new"):
//   gelu(x) = ½·x·(1 + tanh(u)) = x·σ(2u),  u = √(2/π)·(x + 0.044715·x³)
//   gelu'(x) = σ(2u) + x·σ(2u)·(1 − σ(2u))·2·√(2/π)·(1 + 3·0.044715·x²)
// Why through σ: ½(1 + tanh u) is σ(2u), and the vectorized sigmoid (backend/cpu/vexp.h) runs the
// exponentials; libm's tanhf was two fifths of a GPT-2 bf16 step. gelu_tanh is the plain
// reference (libm tanh) the tests hold the fast path to.
#pragma once
#include <cstdint>


namespace tk {

float gelu_tanh(float x);
// The ops: OpTable::gelu_forward, gelu_backward (dx = dy ⊙ gelu'(x)); the CPU's in backend/cpu/gelu.cc.
// GeGLU, Gemma's MLP gate (transformers' gelu_pytorch_tanh), the same GELU on the gate:
//   a = gelu(g) ⊙ u;  dg = da ⊙ u ⊙ gelu'(g),  du = da ⊙ gelu(g)
// The ops: OpTable::geglu_forward (a may alias g), geglu_backward; beside GELU in backend/cpu/gelu.cc.

}  // namespace tk
