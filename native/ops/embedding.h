// Embedding lookup and its gradient:
//   forward   out[t] = E[ids[t]]   (or += with accumulate: GPT-2 adds its position rows to its token rows)
//   backward  dE[ids[t]] += dx[t]
// The table may be stored in any WeightFormat: the forward decodes the rows it gathers, which makes
// it the op that reads weights element by element (the fp32 copy full fine-tuning trains starts
// from it). Ids are host data, checked by the caller.
// The ops: OpTable::embedding_forward, embedding_backward (backend/backend.h); the CPU's in
// backend/cpu/embedding.cc (the backward splits the columns across threads, so rows that repeat
// an id add in row order whatever the thread count).
#pragma once
