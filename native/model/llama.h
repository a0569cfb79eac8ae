// The Llama-family decoder (Llama, Mistral, SmolLM; Qwen2 adds q/k/v biases later): forward to
// logits for one sequence. Weights are WeightViews, so GGUF quantized matrices stay quantized
// and are decoded inside the GEMMs. fp32 activations. The backward, KV cache, batching with
// padding masks and LoRA hooks come with the training engine.
#pragma once
#include <cstdint>
#include <vector>

#include "../core/cpu_features.h"
#include "../core/thread_pool.h"
#include "../ops/weights.h"

namespace tk {

struct LlamaConfig {
  int64_t dim = 0, layers = 0, ffn = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
  float eps = 1e-5f, rope_theta = 10000.0f;
};

struct LlamaLayer {
  const float* attn_norm = nullptr;  // [dim]
  WeightView q, k, v, o;             // [heads*hd, dim], [kv*hd, dim], [kv*hd, dim], [dim, heads*hd]
  const float* ffn_norm = nullptr;   // [dim]
  WeightView gate, up, down;         // [ffn, dim], [ffn, dim], [dim, ffn]
};

struct LlamaWeights {
  WeightView embed;  // [vocab, dim]
  std::vector<LlamaLayer> layers;
  const float* out_norm = nullptr;  // [dim]
  WeightView lm_head;               // [vocab, dim] (the embedding when tied)
};

// logits [n, vocab] for token ids [n] at positions 0..n-1. Token ids must be checked by the caller.
void llama_logits(const LlamaConfig& cfg, const LlamaWeights& w, const int32_t* tokens, int64_t n, float* logits,
                  Isa isa, ThreadPool& pool);

}  // namespace tk
