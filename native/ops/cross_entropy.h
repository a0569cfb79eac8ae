// Cross-entropy of next-token logits with ignored positions (label -100, as transformers):
//   loss = mean over labelled rows of (logsumexp(logits_row) − logits_row[label]),
// and, fused, the gradient of the rows' *sum* dlogits = (softmax − onehot) · grad_scale (zero on
// ignored rows), written over the logits when `grad` is set. Why the sum: a window's gradient is
// divided once, by its labelled-token count over every micro-batch and rank, in the optimizer
// step (optim/optimizer.h), which alone knows that count in a data-parallel run. Rows split across threads; the loss sums per-row values in
// row order, so it does not depend on scheduling.
#pragma once
#include <cstdint>


namespace tk {

constexpr int32_t kIgnoreIndex = -100;

struct CrossEntropyResult {
  double loss = 0.0;   // mean over labelled rows (0 when there are none)
  int64_t count = 0;   // labelled rows
};

// The op: OpTable::cross_entropy (labels kIgnoreIndex or in [0, vocab), checked by the caller); the
// CPU's in backend/cpu/cross_entropy.cc.

}  // namespace tk
