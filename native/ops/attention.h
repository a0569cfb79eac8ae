// Causal grouped-query attention, forward: q [n, Hq, d] for positions offset..offset+n-1, k and v
// [offset + n, Hkv, d] (a KV cache followed by the new tokens) -> out [n, Hq, d]; query head h
// attends with key/value head h / (Hq / Hkv), scores scaled by 1/sqrt(d), softmax over s <= pos.
// bf16: the products round their operands to bf16 (fp32 accumulation); the softmax stays fp32.
//
// Work is split into (sequence, head) tasks, each run by one thread with single-threaded GEMMs:
// a head of a 256-token sequence is far too small to split across threads (two threads on each of
// its GEMMs spent more time in hand-offs than in arithmetic). Inside a task, queries go in blocks
// of 64 rows and each block multiplies only the keys it can see (up to its last query, and from
// the sliding window's start), which skips most of the masked upper triangle. In the forward a
// block holds every key its rows attend to, so its softmax is exact without an online (flash-style)
// rescaling; the forward also keeps each row's log Σ exp. The backward goes over a block's keys in
// tiles of 256, as FlashAttention's does: P of a tile is exp(score − that log Σ exp) and the
// softmax backward's row sum Σ P·dP is dO·O, so no row of P or dP is ever whole. Why: whole rows
// (64 x 4096 fp32, 1 MB each for P and dP) outgrew L2, and the step's share of the matmul ceiling
// fell with sequence length; tiles took the AMX backward from 150 to 116 ms at 4096 tokens.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>


namespace tk {

// Rows {first, length} of a batch that form one sequence each, covering every row (packed
// examples, or the rows of a batch laid end to end); a sequence attends only within itself.
using AttentionSegments = std::vector<std::pair<int64_t, int64_t>>;

// Which scores a query sees and how they are formed beyond q·kᵀ/√d.
struct AttentionScores {
  // > 0: sliding-window attention (Mistral, Gemma's local layers): the query at position p sees
  // keys p − window + 1 .. p.
  int64_t window = 0;
  // > 0: each score s becomes softcap·tanh(s / softcap) before the softmax (Gemma 2's
  // attn_logit_softcapping); the backward multiplies by 1 − tanh².
  float softcap = 0;
};

// The ops: OpTable::attention_forward, attention_forward_cached and attention_backward (backend/backend.h);
// the CPU's in backend/cpu/attention.cc.

}  // namespace tk
