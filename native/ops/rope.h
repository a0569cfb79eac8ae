// Rotary position embedding, in place, on x [tokens, heads, head_dim]: pair i rotates by
// pos · theta^(-2i/rotary_dim), over the first rotary_dim dimensions of each head (all of them but
// in Phi-4-mini, whose partial_rotary_factor leaves the last quarter as it is). Two pairings: interleaved (x[2i], x[2i+1]) — llama.cpp's "normal"
// RoPE, which GGUF Llama checkpoints expect (their converter permutes the q/k rows) — and halves
// (x[i], x[i + r/2]), r the rotary dimensions — transformers' rotate_half on Hugging Face checkpoints. Frequencies and
// angles are computed in fp32 as transformers does. The backward is the inverse rotation.
#pragma once
#include <cstdint>
#include <vector>


namespace tk {

// cos and sin of every (token, pair) angle. Why a table: a training step rotates q and k in every
// layer, forward and backward, at the same positions — computing it once per step takes the
// trigonometry out of 120 passes.
struct RopeTable {
  int64_t tokens = 0, half = 0;  // half: the rotated pairs of a head
  int64_t head_dim = 0;          // a head's stride; dimensions 2·half .. head_dim − 1 are not rotated
  bool interleaved = true;
  std::vector<float> cos, sin;  // [tokens, half]
};

// freq_factors (null: none): pair i's frequency is divided by freq_factors[i] (llama.cpp's
// rope_freqs; how Llama 3.x's, linear and longrope scaling reach the kernels), rotary_dim / 2 of
// them. rotary_dim: the rotated dimensions of a head (0: all). cos and sin are multiplied by
// attention_factor (YaRN's, longrope's; the backward, R(−angle) from the same table, is then still
// the forward's transpose).
RopeTable rope_table(const int32_t* positions, int64_t tokens, int64_t head_dim, float theta, bool interleaved,
                     const float* freq_factors = nullptr, int64_t rotary_dim = 0, float attention_factor = 1.0f);

// The ops: OpTable::rope_forward, rope_backward (dx = R(-angle) · dy, in place on dy); the CPU's in
// backend/cpu/rope.cc.

}  // namespace tk
