// The pieces every family's training step is built from: the step's options and context, a
// projection forward and backward (frozen weight in any format, optional bias, LoRA adapter, full
// fine-tuning gradients), packed rows (positions, segments, shifted labels), and the top of the
// decoder (LM head + cross-entropy, or a classifier head). A family's step is its layer wiring
// only (model/llama_train.cc, model/gpt2_train.cc).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "../core/block_cache.h"
#include "../core/cpu_features.h"
#include "../core/thread_pool.h"
#include "../ops/attention.h"
#include "../ops/cross_entropy.h"
#include "../ops/gemm.h"
#include "trainable.h"
#include "weight_panels.h"

namespace tk {

// {mean loss over the labelled tokens, their count}; the gradients of the summed loss are added
// to the trainable state's gradients.
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
  // Seed of this step's LoRA dropout masks (each adapter draws its own from it); the same seed
  // gives the same masks, so a resumed run repeats them.
  uint64_t seed = 0;
  // With a classifier head: tokens per sequence [batch] (the rest is padding; null: all). Labels
  // are then class ids: [batch] for a sequence head, [batch, n] for a token head.
  const int32_t* lengths = nullptr;
  // Where to write the logits (null: nowhere): the head's [batch or batch·n, classes], or the LM
  // head's [batch·n, vocab].
  float* logits = nullptr;
  // Take the LM head even when the state has a classifier (the language model's logits).
  bool lm_head = false;
  // Set: no top at all; the final normed hidden states pooled per sequence (the last real token,
  // or the mean with mean_pool; lengths as above) are written here [batch, dim], for
  // feature-based training.
  float* features = nullptr;
  bool mean_pool = false;
  // bf16: take the frozen weights' GEMM panels from here (packing them on first use) instead of
  // packing them in every product. Null: pack as usual. Never with full fine-tuning.
  WeightPanelCache* panels = nullptr;
};

// Activation and gradient buffers come from the block cache: the same sizes recur every step.
using Buf = std::vector<float, CachedAllocator<float>>;

struct StepContext {
  Trainable& t;
  const StepOptions& o;
  bool train;  // dropout applies, gradients are taken
  // The backward runs through the decoder: with a head over a frozen decoder only the head
  // trains, and nothing below it is kept or run back.
  bool through;
  Isa isa;
  ThreadPool& pool;
  WeightPanelCache* panels;  // bf16 panels of the frozen weights, or null

  StepContext(Trainable& t, const StepOptions& o, Isa isa, ThreadPool& pool);
};

// One projection: y = x·Wᵀ (W stored [out, in]) or y = x·W (a Conv1D's [in, out]), plus a bias
// and an adapter when present; in full fine-tuning the weight's (and bias's) gradient slices.
struct Linear {
  const WeightView* w = nullptr;
  bool in_out = false;
  const float* bias = nullptr;
  const LoraSlot* lora = nullptr;
  float* dw = nullptr;
  float* db = nullptr;
  int64_t in() const { return in_out ? w->rows : w->cols; }
  int64_t out() const { return in_out ? w->cols : w->rows; }
};

// y (+)= x·op(W) + bias (+ LoRA), adding into y for a residual connection; t [n, r] is saved for
// the backward when an adapter is on. x_panels: x pre-packed (shared_input), or null.
void project(const StepContext& ctx, const Linear& l, const float* x, int64_t n, float* y, Buf& t, bool residual = false,
             const GemmPanels* x_panels = nullptr);

// dx (+)= dy·op(W)ᵀ (+ LoRA), the adapter's gradients added to the state; dW, db added in full
// fine-tuning. dx may be null (nothing below needs it).
void project_back(const StepContext& ctx, const Linear& l, const float* x, const float* dy, int64_t n, const Buf& t, float* dx,
                  bool accumulate);

// An input that several projections read, packed once for their bf16 products (null when the
// step keeps no weight panels: each product then packs its own).
std::unique_ptr<GemmPanels> shared_input(const StepContext& ctx, const float* x, int64_t n, int64_t dim);

// y [n, dim] += bias on every row (nothing for a null bias), rows split across the pool.
void add_bias(float* y, const float* bias, int64_t n, int64_t dim, ThreadPool& pool);
// dst = src with the copying split across the pool.
void copy_into(Buf& dst, const Buf& src, ThreadPool& pool);
// a[i] += b[i], split across the pool.
void add_into(float* a, const float* b, int64_t n, ThreadPool& pool);

// The rows of a step: position ids, and the segments attention keeps apart (a sequence starts at
// each row and wherever the position restarts at 0).
struct StepRows {
  int64_t batch = 0, seq = 0;
  std::vector<int32_t> positions;
  AttentionSegments segments;  // {first row, length}
};
StepRows step_rows(const int32_t* position_ids, int64_t batch, int64_t seq);

// The decoder's top in a step, from the final normed hidden states hf [n, dim]: the classifier
// head when the state has one, else logits = hf·Wᵀ through the LM head and the shifted
// cross-entropy (position t predicts labels[t + 1], never across a row or an example). With a
// backward, dh [n, dim] receives the gradient (zeroed first) and the head's or, in full fine-tuning,
// the LM head's gradients are added (lm_head_grad; null when frozen).
CrossEntropyResult decoder_top(const StepContext& ctx, const WeightView& lm_head, float* lm_head_grad, const float* hf,
                               int64_t dim, int64_t vocab, const StepRows& rows, const int32_t* labels, float* dh);

// A sequence classifier alone on pooled features [batch, dim] (labels [batch], -100 ignored): the
// head's logits [batch, classes] are written, and with `backward` its gradients of the summed loss
// added to t.grads.
CrossEntropyResult head_step(Trainable& t, const float* features, int64_t batch, const int32_t* labels, bool backward,
                             float* logits, ThreadPool& pool);

// de[ids[t]] += dx[t] for n rows of `dim` (an embedding's gradient), split by columns.
void scatter_rows(float* de, const int32_t* ids, const float* dx, int64_t n, int64_t dim, ThreadPool& pool);

// After a step: the large buffers stay in the block cache for the next one, the small ones go
// back from this worker thread's malloc arena. A step declares a StepScope before its buffers, so
// this runs once they are freed.
void end_step();
struct StepScope {
  StepScope() = default;
  StepScope(const StepScope&) = delete;
  ~StepScope() { end_step(); }
};

}  // namespace tk
