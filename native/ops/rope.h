// Rotary position embedding, in place, on x [tokens, heads, head_dim]: pair i rotates by
// pos · theta^(-2i/head_dim). Two pairings: interleaved (x[2i], x[2i+1]) — llama.cpp's "normal"
// RoPE, which GGUF Llama checkpoints expect (their converter permutes the q/k rows) — and halves
// (x[i], x[i + d/2]) — transformers' rotate_half on Hugging Face checkpoints. Frequencies are
// computed in fp32 as transformers does. The backward is the inverse rotation.
#pragma once
#include <cstdint>

namespace tk {

void rope_forward(float* x, int64_t tokens, int64_t heads, int64_t head_dim, const int32_t* positions, float theta,
                  bool interleaved);

// dx = R(-angle) · dy, in place on dy.
void rope_backward(float* dy, int64_t tokens, int64_t heads, int64_t head_dim, const int32_t* positions, float theta,
                   bool interleaved);

}  // namespace tk
