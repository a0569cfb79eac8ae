// The Llama-family decoder (Llama, Mistral, SmolLM, Qwen2 with its q/k/v biases, Qwen3 with its
// per-head q/k RMSNorm, Gemma 3 with its scaled embedding, post-norms, GeGLU and interleaved
// sliding-window layers): forward to
// logits for one sequence, with a KV cache for generation. Weights are WeightViews, so GGUF
// quantized matrices stay quantized and are decoded inside the GEMMs. fp32 activations. The
// training step is model/llama_train.h.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../backend/backend.h"
#include "trainable.h"

namespace tk {

struct LlamaConfig {
  int64_t dim = 0, layers = 0, ffn = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
  float eps = 1e-5f, rope_theta = 10000.0f;
  bool interleaved_rope = true;  // GGUF checkpoints; Hugging Face ones rotate halves
  int64_t sliding_window = 0;    // Mistral: attend to the last `sliding_window` positions (0: all)
  // RoPE scaling as llama.cpp stores it (rope_freqs.weight): pair i's frequency divided by
  // rope_freq_factors[i] (Llama 3.x's "llama3" rule, linear scaling); empty: none.
  std::vector<float> rope_freq_factors;
  // Gemma: the embedding's rows multiplied by embed_scale (√dim; 0: not scaled); the MLP gated by
  // tanh GELU instead of SiLU; attention scores scaled by query_pre_attn_scalar^-½ instead of
  // head_dim^-½ (0: head_dim). Its (1 + w) RMSNorms are plain ones here: the loader adds the 1.
  float embed_scale = 0;
  bool gelu_gate = false;
  double query_pre_attn_scalar = 0;
  // Gemma 3: each layer's own sliding window (0: global; empty: sliding_window for every layer);
  // windowed layers rotate with rope_theta_local and no frequency factors where it is set.
  std::vector<int64_t> layer_windows;
  float rope_theta_local = 0;
  // YaRN, longrope: the global layers' cos and sin multiplied by this; 1: none.
  double rope_attention_factor = 1;
  // Gemma 2: scores soft-capped to ±attn_softcap (ops/attention.h), the LM head's logits to
  // ±logit_softcap (cap·tanh(x / cap)); 0: none.
  float attn_softcap = 0, logit_softcap = 0;
  // Phi-3: q, k, v and gate, up are stored fused (qkv_proj, gate_up_proj) and split into row
  // blocks at load; LoRA adapts each fused matrix whole, as PEFT does (qkv_proj, gate_up_proj):
  // one A shared by the blocks, B split by rows (model/llama_family.cc).
  bool fused_projections = false;
  // Phi-4-mini: RoPE on the first rotary_dim dimensions of each head (0: all; rope_freq_factors
  // then has rotary_dim / 2 entries).
  int64_t rotary_dim = 0;
  // longrope (Phi-3 128k, Phi-3.5, Phi-4-mini): rope_freq_factors are the short factors, these the
  // long ones, taken by a forward whose last position is at or past rope_long_after (transformers
  // decides per call from max(position) + 1 > original_max_position_embeddings); empty: none.
  std::vector<float> rope_freq_factors_long;
  int64_t rope_long_after = 0;
  // Dynamic NTK (transformers' "dynamic"): a forward whose last position + 1 = L passes
  // rope_dynamic_after (max_position_embeddings) rotates its global layers with the base
  // rope_theta · (f · L / after − (f − 1))^(d / (d − 2)), f = rope_dynamic_factor, d the rotated
  // dimensions; below it, plain RoPE. Cached keys keep the base they were rotated with, as in
  // transformers' cached generation. 0: off.
  double rope_dynamic_factor = 0;
  int64_t rope_dynamic_after = 0;
};

// The attention span of layer li (0: every earlier position).
inline int64_t layer_window(const LlamaConfig& c, size_t li) { return c.layer_windows.empty() ? c.sliding_window : c.layer_windows[li]; }
// How layer li's attention forms and masks its scores.
inline AttentionScores attention_scores(const LlamaConfig& c, size_t li) { return {layer_window(c, li), c.attn_softcap}; }
// Whether layer li uses the local RoPE table (Gemma 3's sliding layers).
inline bool local_rope(const LlamaConfig& c, size_t li) { return c.rope_theta_local > 0 && layer_window(c, li) > 0; }
// What q is multiplied by after RoPE so that the attention kernels' 1/√head_dim becomes
// 1/√query_pre_attn_scalar (1 where they agree, as in every Gemma 3 but the 27B). (YaRN's and
// longrope's attention factor is in the global RoPE table's cos and sin, as transformers has it:
// with partial rotary it scales only the rotated dimensions.)
inline float query_factor(const LlamaConfig& c) {
  return c.query_pre_attn_scalar > 0 ? static_cast<float>(std::sqrt(static_cast<double>(c.head_dim) / c.query_pre_attn_scalar)) : 1.0f;
}

struct LlamaLayer {
  const float* attn_norm = nullptr;  // [dim]
  WeightView q, k, v, o;             // [heads*hd, dim], [kv*hd, dim], [kv*hd, dim], [dim, heads*hd]
  const float* q_bias = nullptr;     // Qwen2: biases of q, k, v (frozen); null for Llama
  const float* k_bias = nullptr;
  const float* v_bias = nullptr;
  const float* q_norm = nullptr;     // Qwen3: RMSNorm weights [head_dim] of each head's q and k,
  const float* k_norm = nullptr;     // applied before RoPE; null for the others
  const float* ffn_norm = nullptr;   // [dim]
  WeightView gate, up, down;         // [ffn, dim], [ffn, dim], [dim, ffn]
  // Gemma: RMSNorms of the attention's and the MLP's outputs before they join the residual; null for the others.
  const float* post_attn_norm = nullptr;  // [dim]
  const float* post_ffn_norm = nullptr;   // [dim]
};

struct LlamaWeights {
  WeightView embed;  // [vocab, dim]
  std::vector<LlamaLayer> layers;
  const float* out_norm = nullptr;  // [dim]
  WeightView lm_head;               // [vocab, dim] (the embedding when tied)
};

enum LlamaProjection { kQ = 0, kK, kV, kO, kGate, kUp, kDown, kProjections };
// Full fine-tuning's per-layer weights (Trainable::full.layers[layer][...]): the seven projections
// first, then the two norms; and the model-wide ones (full.model[...]).
enum LlamaLayerWeight { kAttnNorm = kProjections, kFfnNorm, kQNorm, kKNorm, kPostAttnNorm, kPostFfnNorm, kLlamaLayerWeights };
enum LlamaModelWeight { kEmbed = 0, kOutNorm, kLmHead, kLlamaModelWeights };

const WeightView& projection(const LlamaLayer& L, int p);
WeightView& projection(LlamaLayer& L, int p);

// The weights a step or a forward uses: in full fine-tuning every weight is an fp32 slice of the
// trainable parameters (views resolved here, so the parameter vector may grow or move); else the
// loaded ones.
LlamaWeights llama_weights_with(const LlamaWeights& w, const LlamaConfig& c, const Trainable* t);

// Keys and values of the tokens seen so far, per layer, for incremental decoding (on the backend).
struct LlamaCache {
  int64_t capacity = 0, length = 0;
  std::vector<Buffer> k, v;  // per layer: [capacity, kv_heads * head_dim]
  std::vector<int32_t> tokens;  // the `length` tokens seen (host), for longrope's switch below
  LlamaCache(const LlamaConfig& cfg, int64_t capacity, const ExecContext& x);
  // Room for `capacity` tokens, the cached ones kept.
  void grow(int64_t capacity, const ExecContext& x);
};

// The RoPE tables of rows at `positions`: [0] for global layers, [1] for local ones (empty
// unless some layer uses it).
std::array<RopeTable, 2> llama_rope_tables(const LlamaConfig& c, const int32_t* positions, int64_t n);

// Runs tokens [n] through the decoder. Without a cache they sit at positions 0..n-1 and logits
// [n, vocab] are written; with one they follow the cached tokens (whose count grows by n) and
// only the last token's logits [vocab] are written. Token ids must be checked by the caller.
// The trainable state's adapters (t may be null) are applied to the projections they are on;
// `w` comes from llama_weights_with.
void llama_forward(const LlamaConfig& cfg, const LlamaWeights& w, const int32_t* tokens, int64_t n,
                   LlamaCache* cache, float* logits, const ExecContext& x, const Trainable* t = nullptr);

}  // namespace tk
