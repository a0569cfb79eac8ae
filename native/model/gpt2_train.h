// GPT-2 training step with LoRA on its Conv1D projections (PEFT's target names c_attn, c_proj,
// c_fc; Conv1D stores W as [in, out], the adapters are PEFT's A [r, in] and B [out, r]):
// forward with saved activations, cross-entropy (labels shifted as transformers), backward
// through LayerNorm, GELU, attention and the frozen projections to the adapters. Packed rows
// (position ids restarting at 0) attend within each example, as in the Llama step.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "gpt2.h"
#include "llama.h"
#include "llama_lora.h"

namespace tk {

enum Gpt2Projection { kGpt2Attn = 0, kGpt2Proj, kGpt2Fc, kGpt2FcProj, kGpt2Projections };

// Full fine-tuning: every weight is an fp32 slice of Gpt2Lora::params (the model's views point
// there); these are the offsets of each one's gradient in Gpt2Lora::grads.
struct Gpt2Full {
  bool on = false;
  int64_t wte = 0, wpe = 0, lnf_w = 0, lnf_b = 0;
  struct Layer {
    int64_t ln1_w = 0, ln1_b = 0, ln2_w = 0, ln2_b = 0;
    std::array<int64_t, kGpt2Projections> w{}, b{};
  };
  std::vector<Layer> layers;
};

struct Gpt2Lora {
  std::vector<std::array<LoraSlot, kGpt2Projections>> layers;
  std::vector<float> params, grads;  // flat: each on-slot's A [r, in] then B [out, r] (or all weights)
  Gpt2Full full;
};

// Gradients of grad_scale · (mean loss over labelled tokens) are added to lora.grads (unless
// options.backward is false). bf16 and checkpointing are not used by this step. logits_out
// [batch · seq, vocab], when given, receives the logits (adapters applied).
StepResult gpt2_lora_step(const Gpt2Config& c, const Gpt2Weights& w, Gpt2Lora& lora, const int32_t* tokens,
                          const int32_t* labels, int64_t batch, int64_t seq, const StepOptions& options, Isa isa,
                          ThreadPool& pool, float* logits_out = nullptr);

// Incremental decoding: tokens [n] at positions offset..offset+n-1 after `offset` cached ones.
// k_cache, v_cache hold [layers, capacity, dim] (this call writes rows offset..offset+n-1); the
// last token's logits [vocab] are written. lora may be null (or hold no adapters).
void gpt2_decode(const Gpt2Config& c, const Gpt2Weights& w, Gpt2Lora* lora, const int32_t* tokens, int64_t n, int64_t offset,
                 int64_t capacity, float* k_cache, float* v_cache, float* logits, Isa isa, ThreadPool& pool);

}  // namespace tk
