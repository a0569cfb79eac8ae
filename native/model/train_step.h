// The pieces every family's training step is built from: the step's options and context, a
// projection forward and backward (frozen weight in any format, optional bias, LoRA adapter, full
// fine-tuning gradients), packed rows (positions, segments, shifted labels), and the top of the
// decoder (LM head + cross-entropy, or a classifier head). A family's step is its layer wiring
// only (model/llama_train.cc, model/gpt2_train.cc).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../backend/backend.h"
#include "../optim/gradient_reducer.h"
#include "trainable.h"

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
  // Where to write the logits (host memory; null: nowhere): the head's [batch or batch·n, classes], or the LM
  // head's [batch·n, vocab].
  float* logits = nullptr;
  // Told when each group's gradient is final (ZeRO-2 reduces it then; null: nobody listens).
  GradientListener* listener = nullptr;
  // Take the LM head even when the state has a classifier (the language model's logits).
  bool lm_head = false;
  // Set (host memory): no top at all; the final normed hidden states pooled per sequence (the last real token,
  // or the mean with mean_pool; lengths as above) are written here [batch, dim], for
  // feature-based training.
  float* features = nullptr;
  bool mean_pool = false;
  // bf16: let the backend keep the frozen weights prepared for the next step (ExecContext's
  // keep_weights). Never with full fine-tuning.
  bool keep_weights = false;
  // Rows of LM-head logits materialized at once (0: as many as kLogitChunkValues allows): the
  // loss, its gradient and the backward through the head run a chunk of rows at a time.
  int64_t logit_rows = 0;
};

// Why chunks: the logits are rows x vocabulary fp32 — 4.2 GB for 8,192 tokens of Llama 3's
// 128,256 — the largest activation of a step by far, yet each row's loss and gradient need only
// that row. 256 MiB a chunk keeps a CPU step of a few thousand tokens in one chunk (the frozen head
// is decoded once per chunk's product) while capping a GPU step's logits.
constexpr int64_t kLogitChunkValues = int64_t{1} << 26;

// Activations and gradients are buffers of the model's backend.
using Buf = Buffer;

struct StepContext {
  Trainable& t;
  const StepOptions& o;
  bool train;  // dropout applies, gradients are taken
  // The backward runs through the decoder: with a head over a frozen decoder only the head
  // trains, and nothing below it is kept or run back.
  bool through;
  ExecContext x;  // the call's, keep_weights settled for this step
  const OpTable& op;

  // A step declares its context before its buffers: with `ends_step`, the backend's end_step
  // runs when the context goes, after every buffer of the step is freed.
  StepContext(Trainable& t, const StepOptions& o, const ExecContext& x, bool ends_step = true);
  ~StepContext();
  StepContext(const StepContext&) = delete;
  StepContext& operator=(const StepContext&) = delete;
  // n values on the step's backend (zeroed when asked).
  Buf buffer(int64_t n, bool zero = false) const { return Buf(x, n, zero); }
  // The backward is done with a parameter group ("layer.3", "output"): its gradient is final.
  void group_done(const std::string& group) const {
    if (train && o.listener) o.listener->group_done(group);
  }

 private:
  bool ends_step_;
};

// The context of a forward alone (logits, generation): no backward, the trainable state only read
// (t may be null: the frozen model).
struct ForwardContext {
  Trainable none;
  StepOptions o;
  StepContext ctx;
  ForwardContext(const Trainable* t, const ExecContext& x);
};

// Position ids offset, offset + 1, …, offset + n − 1 (host data).
std::vector<int32_t> positions_from(int64_t offset, int64_t n);

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
// the backward when an adapter is on. x_panels: x prepared (shared_input), or null.
void project(const StepContext& ctx, const Linear& l, const float* x, int64_t n, float* y, Buf& t, bool residual = false,
             const GemmPanels* x_panels = nullptr);

// dx (+)= dy·op(W)ᵀ (+ LoRA), the adapter's gradients added to the state; dW, db added in full
// fine-tuning. dx may be null (nothing below needs it).
void project_back(const StepContext& ctx, const Linear& l, const float* x, const float* dy, int64_t n, const Buf& t, float* dx,
                  bool accumulate);

// An input that several projections read, prepared once for their products (null when the
// backend prepares nothing: each product then takes x as it is).
std::unique_ptr<GemmPanels> shared_input(const StepContext& ctx, const float* x, int64_t n, int64_t dim);

// The rows of a step (host data): position ids, and the segments attention keeps apart (a
// sequence starts at each row and wherever the position restarts at 0).
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
// the LM head's gradients are added (lm_head_grad; null when frozen). logit_softcap > 0: the
// logits are soft-capped (Gemma 2) before the loss.
CrossEntropyResult decoder_top(const StepContext& ctx, const WeightView& lm_head, float* lm_head_grad, const float* hf,
                               int64_t dim, int64_t vocab, const StepRows& rows, const int32_t* labels, float* dh,
                               float logit_softcap = 0);

// A sequence classifier alone on pooled features [batch, dim] (labels [batch], -100 ignored): the
// head's logits [batch, classes] are written, and with `backward` its gradients of the summed loss
// added to t.grads.
CrossEntropyResult head_step(Trainable& t, const float* features, int64_t batch, const int32_t* labels, bool backward,
                             float* logits, const ExecContext& x);



}  // namespace tk
