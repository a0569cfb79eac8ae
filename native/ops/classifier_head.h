// Classification heads on the decoder's final (normed) hidden states, as transformers' task
// models put them there:
//   sequence  one row per sequence: its last token (LlamaForSequenceClassification) or the mean of
//             its tokens, then Linear(dim, classes) — or the RoBERTa-style MLP
//             Linear(dim, hidden) -> tanh -> Linear(hidden, classes)
//   token     every token's row through the same layers (LlamaForTokenClassification)
// with cross-entropy over the classes (label -100: ignored). The head's weights are trainable
// slices of the flat parameter vector, so AdamW, checkpoints and the sharded optimizer see them
// like any other parameter. Plain loops: the head is dim x classes, tiny beside the decoder.
#pragma once
#include <cstdint>

#include "cross_entropy.h"

namespace tk {

struct ClassifierHead {
  bool on = false;
  bool token_level = false;  // token classification (else one pooled row per sequence)
  bool mean_pool = false;    // sequence: mean of the tokens (else the last one)
  int64_t dim = 0, classes = 0, hidden = 0;  // hidden > 0: the two-layer MLP
  // Offsets into the flat parameters / gradients: w1 [hidden or classes, dim], b1, and for the
  // MLP w2 [classes, hidden], b2.
  int64_t w1 = 0, b1 = 0, w2 = -1, b2 = -1;
};

// The ops (backend/backend.h; the CPU's in backend/cpu/classifier_head.cc):
// OpTable::classifier_head_step: hidden [batch * seq, dim] (rows of each sequence contiguous);
// lengths [batch] tokens per sequence (the rest is padding; null: all seq). labels: [batch] class
// ids for a sequence head, [batch * seq] for a token head (-100 ignored). Writes logits [rows,
// classes] (rows = batch or batch * seq) when given. With `dhidden` (zeroed [batch * seq, dim])
// the backward runs: gradients of the summed loss are added to grads (head slices) and written
// to dhidden.
// OpTable::classifier_pool: the pooled features [batch, dim] a sequence head would see (for
// feature-based training).

}  // namespace tk
