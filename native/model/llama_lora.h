// LoRA training step for the Llama-family decoder: forward with saved activations, fused
// cross-entropy (labels shifted as transformers does: position t predicts labels[t + 1]),
// backward through every op to the adapters' A and B (base weights and embeddings frozen).
// Adapters live in one flat fp32 parameter vector (with matching gradient and AdamW state
// vectors), so the optimizer — and later its sharded form — steps one contiguous range.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "llama.h"
#include "weight_panels.h"

namespace tk {

// Adds the step's gradients of the mean loss over all labelled tokens of the batch to lora.grads
// (sequences [batch, n] of token ids and labels, -100 ignored). Returns {loss, labelled tokens}.
struct StepResult {
  double loss = 0.0;
  int64_t count = 0;
};
struct StepOptions {
  // The projections and the LM head run as bf16 GEMMs (fp32 accumulation, fp32 activations and
  // gradients between ops); attention, norms and the loss stay fp32.
  bool bf16 = false;
  // Keep only each layer's input and recompute the layer in the backward (activation
  // checkpointing): about one extra forward of compute for a fraction of the activation memory.
  bool checkpoint = false;
  // False: the loss only (evaluation); no activations kept, gradients untouched.
  bool backward = true;
  // Position ids [batch, n] (null: 0..n-1 in every row), as transformers' position_ids for packed
  // rows: each restart at 0 begins a new example, which attends only to itself, and the token
  // before it predicts nothing. Rows start at 0 and count up by one (checked by the caller).
  const int32_t* positions = nullptr;
  // Multiplies this step's gradients (the reported loss stays the plain mean): gradient
  // accumulation gives each micro-batch its share of the window's labelled tokens, so the sum is
  // the gradient of the mean over every token of the window (as transformers since 4.46).
  float grad_scale = 1.0f;
  // Seed of the LoRA dropout masks of this step (each adapter draws its own from it); the same
  // seed gives the same masks, so a resumed run repeats them.
  uint64_t seed = 0;
  // With a classifier head: tokens per sequence [batch] (the rest is padding; null: all), and
  // where to write the head's logits [batch or batch·n, classes] (null: nowhere). Labels are
  // then class ids: [batch] for a sequence head, [batch, n] for a token head.
  const int32_t* lengths = nullptr;
  float* head_logits = nullptr;
  // bf16: take the frozen weights' GEMM panels from here (packing them on first use) instead of
  // packing them in every product. Null: pack as usual. Never with full fine-tuning.
  WeightPanelCache* panels = nullptr;
};
StepResult llama_lora_step(const LlamaConfig& cfg, const LlamaWeights& w, LlamaLora& lora, const int32_t* tokens,
                           const int32_t* labels, int64_t batch, int64_t n, const StepOptions& options, Isa isa,
                           ThreadPool& pool);

}  // namespace tk
