// The Llama-family decoder (Llama, Mistral, SmolLM; Qwen2 adds q/k/v biases later): forward to
// logits for one sequence. Weights are WeightViews, so GGUF quantized matrices stay quantized
// and are decoded inside the GEMMs. fp32 activations. The backward, KV cache, batching with
// padding masks and LoRA hooks come with the training engine.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "../core/cpu_features.h"
#include "../core/thread_pool.h"
#include "../ops/weights.h"
#include "classifier_head.h"

namespace tk {

struct LlamaConfig {
  int64_t dim = 0, layers = 0, ffn = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
  float eps = 1e-5f, rope_theta = 10000.0f;
  bool interleaved_rope = true;  // GGUF checkpoints; Hugging Face ones rotate halves
  int64_t sliding_window = 0;    // Mistral: attend to the last `sliding_window` positions (0: all)
};

struct LlamaLayer {
  const float* attn_norm = nullptr;  // [dim]
  WeightView q, k, v, o;             // [heads*hd, dim], [kv*hd, dim], [kv*hd, dim], [dim, heads*hd]
  const float* q_bias = nullptr;     // Qwen2: biases of q, k, v (frozen); null for Llama
  const float* k_bias = nullptr;
  const float* v_bias = nullptr;
  const float* ffn_norm = nullptr;   // [dim]
  WeightView gate, up, down;         // [ffn, dim], [ffn, dim], [dim, ffn]
};

struct LlamaWeights {
  WeightView embed;  // [vocab, dim]
  std::vector<LlamaLayer> layers;
  const float* out_norm = nullptr;  // [dim]
  WeightView lm_head;               // [vocab, dim] (the embedding when tied)
};

enum LlamaProjection { kQ = 0, kK, kV, kO, kGate, kUp, kDown, kProjections };

struct LoraSlot {
  bool on = false;
  int64_t r = 0;
  float scale = 1.0f;
  float dropout = 0.0f;  // on the adapter's input, in training steps only (as PEFT's lora_dropout)
  int64_t a_offset = 0, b_offset = 0;  // into the flat parameter / gradient vectors
};

// Full fine-tuning: every weight is an fp32 slice of LlamaLora::params (the model's views point
// there), and these are the offsets of each one's gradient in LlamaLora::grads.
struct FullTraining {
  bool on = false;
  int64_t embed = 0, out_norm = 0, lm_head = -1;  // lm_head -1: tied to the embedding
  struct Layer {
    int64_t attn_norm = 0, ffn_norm = 0;
    std::array<int64_t, kProjections> proj{};
  };
  std::vector<Layer> layers;
};

struct LlamaLora {
  std::vector<std::array<LoraSlot, kProjections>> layers;
  std::vector<float> params, grads;  // flat: every on-slot's A [r, in] then B [out, r] (or all weights), then the head
  FullTraining full;
  ClassifierHead head;  // replaces the LM head and its loss when on
  // Whether anything below the head trains (adapters or full fine-tuning); when not, a step
  // keeps no activations and stops its backward at the head.
  bool backbone_trains() const {
    if (full.on) return true;
    for (const auto& slots : layers)
      for (const LoraSlot& s : slots)
        if (s.on) return true;
    return false;
  }
};

// y [n, dim] += bias [dim] on every row (no-op for a null bias).
void add_bias(float* y, const float* bias, int64_t n, int64_t dim);

// Keys and values of the tokens seen so far, per layer, for incremental decoding.
struct LlamaCache {
  int64_t capacity = 0, length = 0;
  std::vector<std::vector<float>> k, v;  // per layer: [capacity, kv_heads * head_dim]
  LlamaCache(const LlamaConfig& cfg, int64_t capacity);
};

// Runs tokens [n] through the decoder. Without a cache they sit at positions 0..n-1 and logits
// [n, vocab] are written; with one they follow the cached tokens (whose count grows by n) and
// only the last token's logits [vocab] are written. Token ids must be checked by the caller.
// LoRA adapters (may be null) are applied to the projections they are on.
void llama_forward(const LlamaConfig& cfg, const LlamaWeights& w, const int32_t* tokens, int64_t n,
                   LlamaCache* cache, float* logits, Isa isa, ThreadPool& pool, const LlamaLora* lora = nullptr);

}  // namespace tk
