// Rotary position embedding, in place, on x [tokens, heads, head_dim].
// Interleaved pairs (x[2i], x[2i+1]) rotate by pos · theta^(-2i/head_dim): llama.cpp's "normal"
// RoPE, which GGUF Llama checkpoints expect (their converter permutes the q/k rows so this equals
// transformers' rotate_half on the original weights). Frequencies are computed in fp32 as
// transformers does. Forward only for now.
#pragma once
#include <cstdint>

namespace tk {

void rope_interleaved_forward(float* x, int64_t tokens, int64_t heads, int64_t head_dim, const int32_t* positions,
                              float theta);

// The backward of a rotation is the inverse rotation: dx = R(-angle) · dy, in place on dy.
void rope_interleaved_backward(float* dy, int64_t tokens, int64_t heads, int64_t head_dim, const int32_t* positions,
                               float theta);

}  // namespace tk
