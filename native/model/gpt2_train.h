// The training step of GPT-2, on the same pieces as the Llama family's (model/train_step.h):
// LoRA on its Conv1D projections through ops/lora_linear (PEFT's targets c_attn, c_proj, c_fc;
// A [r, in], B [out, r]), full fine-tuning of every weight and bias, a classifier head, bf16
// products and activation checkpointing. Packed rows (position ids restarting at 0) attend within
// each example, and take their position embeddings from those ids.
#pragma once
#include <cstdint>

#include "gpt2.h"
#include "train_step.h"

namespace tk {

// As llama_step: sequences [batch, seq] (seq <= positions, checked by the caller); `w` comes from
// gpt2_weights_with(…, &t). options.logits receives the logits [batch·seq, vocab] when set.
StepResult gpt2_step(const Gpt2Config& c, const Gpt2Weights& w, Trainable& t, const int32_t* tokens, const int32_t* labels,
                     int64_t batch, int64_t seq, const StepOptions& options, const ExecContext& x);

}  // namespace tk
