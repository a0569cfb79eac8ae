// The training step of the Llama-family decoder: forward with saved activations, the decoder's
// top (LM head and cross-entropy, labels shifted as transformers does, or a classifier head),
// backward through every op into the trainable state's gradients: LoRA adapters' A and B, or
// every weight in full fine-tuning, and the head. The shared pieces are model/train_step.h.
#pragma once
#include <cstdint>

#include "llama.h"
#include "train_step.h"

namespace tk {

// Sequences [batch, n] of token ids and labels (-100 ignored). Adds the gradients of the summed
// loss over the labelled tokens to t.grads (unless options.backward is false); `w` comes from
// llama_weights_with(…, &t).
StepResult llama_step(const LlamaConfig& cfg, const LlamaWeights& w, Trainable& t, const int32_t* tokens,
                      const int32_t* labels, int64_t batch, int64_t n, const StepOptions& options, const ExecContext& x);

}  // namespace tk
