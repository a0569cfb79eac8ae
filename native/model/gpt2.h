// The GPT-2 decoder (GPT2LMHeadModel), forward to logits: token + learned position embeddings,
// pre-LayerNorm blocks with fused q/k/v (Conv1D weights stored [in, out], with biases), GELU
// (tanh approximation, "gelu_new") MLP, final LayerNorm, LM head tied to the token embedding.
// Training (LoRA on c_attn, c_proj, c_fc) comes next.
#pragma once
#include <cstdint>
#include <vector>

#include "../core/cpu_features.h"
#include "../core/thread_pool.h"
#include "../ops/weights.h"

namespace tk {

struct Gpt2Config {
  int64_t dim = 0, layers = 0, heads = 0, vocab = 0, positions = 0, ffn = 0;
  float eps = 1e-5f;
};

struct Gpt2Layer {
  const float *ln1_w = nullptr, *ln1_b = nullptr, *ln2_w = nullptr, *ln2_b = nullptr;
  WeightView attn, proj, fc, fc_proj;  // Conv1D: [in, out]
  const float *attn_b = nullptr, *proj_b = nullptr, *fc_b = nullptr, *fc_proj_b = nullptr;
};

struct Gpt2Weights {
  WeightView wte;               // [vocab, dim]
  const float* wpe = nullptr;   // [positions, dim]
  std::vector<Gpt2Layer> layers;
  const float *lnf_w = nullptr, *lnf_b = nullptr;
};

// logits [n, vocab] for tokens [n] at positions 0..n-1 (n <= positions; checked by the caller).
void gpt2_logits(const Gpt2Config& c, const Gpt2Weights& w, const int32_t* tokens, int64_t n, float* logits, Isa isa,
                 ThreadPool& pool);

}  // namespace tk
