// The trainable state of a model, the same for every family and every method: one flat fp32
// parameter vector (with gradients of the same layout) holding LoRA adapters, or every weight
// (full fine-tuning), and a classifier head after either; each trainable tensor has a name, a
// shape and a group. The optimizer (optim/optimizer.h) sees only the flat vectors, so AdamW,
// clipping, learning-rate groups, checkpoints and the sharded (ZeRO) step are written once.
//
// Gradients are sums over labelled tokens; `tokens` counts the tokens summed since the last
// optimizer step, which divides by that count (all-reduced across ranks) once.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../backend/cpu/thread_pool.h"
#include "../dist/comm.h"
#include "../optim/gradient_reducer.h"
#include "../optim/optimizer.h"
#include "../backend/backend.h"
#include "../ops/classifier_head.h"

namespace tk {

struct LoraSlot {
  bool on = false;
  int64_t r = 0;
  float scale = 1.0f;
  float dropout = 0.0f;  // on the adapter's input, in training steps only (as PEFT's lora_dropout)
  int64_t a_offset = 0, b_offset = 0;  // A [r, in] and B [out, r] in the flat vectors
};

struct LoraSpec {
  int64_t r = 8;
  float scale = 1.0f;  // alpha / r, or alpha / sqrt(r) for rsLoRA
  float dropout = 0.0f;
  uint64_t seed = 0;
};

// Full fine-tuning: the offset of each weight's fp32 copy in the flat vector, indexed by the
// family's own enums of model-wide and per-layer weights; -1 where a weight does not train (a
// head tied to the embedding, frozen biases).
struct FullLayout {
  bool on = false;
  std::vector<int64_t> model;
  std::vector<std::vector<int64_t>> layers;
};

enum class TrainableKind { Lora, Full, Head };

struct TrainableTensor {
  std::string name;  // the family's names: blk.N.attn_q.lora_a, transformer.h.N.attn.c_attn.weight, head.w1
  TrainableKind kind = TrainableKind::Lora;
  int64_t offset = 0;
  std::vector<int64_t> shape;
  std::string group;  // embed, layer.N, output, head: contiguous, bottom to top
  int64_t numel() const;
};

struct ParamGroup {
  std::string name;
  int64_t offset = 0, length = 0;
};

struct Trainable {
  // Empty, its vectors on `backend` (a state that never grows, as a frozen model's, may have none).
  explicit Trainable(Backend* backend = nullptr) : params(backend), grads(backend) {}
  std::vector<std::vector<LoraSlot>> lora;  // [layer][projection in the family's order]
  FullLayout full;
  ClassifierHead head;  // replaces the LM head and its loss when on
  std::vector<TrainableTensor> tensors;
  FlatVector params, grads;  // on the model's backend

  // Appends a zero-filled tensor and returns its offset.
  int64_t append(std::string name, TrainableKind kind, std::vector<int64_t> shape, std::string group);
  const TrainableTensor* find(const std::string& name) const;
  // The groups in tensor order, each one contiguous range.
  std::vector<ParamGroup> groups() const;
  // Whether anything below the head trains (adapters or full fine-tuning); when not, a step
  // keeps no activations and stops its backward at the head.
  bool backbone_trains() const;
  // The adapter of (layer, projection), or null.
  const LoraSlot* slot(size_t layer, int projection) const;
  // The gradient slice at a full-training offset, or null (-1, or not full fine-tuning).
  float* full_grad(int64_t offset) { return full.on && offset >= 0 ? grads.data() + offset : nullptr; }
  // An fp32 view of a fully trained weight [rows, cols] at `offset` of the parameters.
  WeightView full_view(int64_t offset, int64_t rows, int64_t cols) const;
};

// dims(layer, projection) -> {in, out}, or {0, 0} where no adapter goes; name(layer, projection)
// -> the tensors' base name, group(layer) -> their group. Adds A [r, in] (drawn as PEFT
// initializes it: uniform in ±1/sqrt(in), in slot order from the seed) and B [out, r] (zero) for
// each; `projections` per layer.
template <class Dims, class Name>
void add_lora_adapters(Trainable& t, int64_t layers, int projections, const LoraSpec& spec, Dims&& dims, Name&& name);

// Appends a classifier head's weights (torch.nn.Linear's initialization from the seed).
void add_classifier_head(Trainable& t, ClassifierHead head, uint64_t seed);

// Appends a weight (decoded to fp32) or a vector as a fully trained tensor; returns its offset.
int64_t append_full(Trainable& t, const std::string& name, const std::string& group, const WeightView& w,
                    const ExecContext& x);
int64_t append_full(Trainable& t, const std::string& name, const std::string& group, const float* v, int64_t n);

// The trainable state with its optimizer state. `busy` is held by every call that reads or
// writes it while a step may run (see TrainingGuard).
struct TrainingState {
  explicit TrainingState(Backend* backend = nullptr) : t(backend), m(backend), v(backend) {}
  Trainable t;
  FlatVector m, v;  // AdamW moments, the same layout
  int64_t step = 0;
  double tokens = 0;  // labelled tokens whose gradient sums `t.grads` holds
  std::atomic<bool> busy{false};
  // Data parallelism: this rank's place in the group and the ZeRO stage (world 1: a plain run).
  // At stages 1 and 2, m and v hold this rank's shard of the layout only.
  int world = 1, rank = 0, stage = 0;
  ShardLayout layout() const { return shard_layout(t.params.size(), world); }
  bool moments_sharded() const { return tk::moments_sharded(layout(), stage); }
  // ZeRO-2: each micro-batch's gradient is reduced to its shards' owners during the backward
  // (optim/gradient_reducer.h); t.grads then holds the window's sums for this rank's shard only.
  bool reduces_in_backward() const { return world > 1 && stage == 2; }
  // The groups as the reducer takes them.
  std::vector<GradientGroup> gradient_groups() const;
  // The first parameter index whose moments m[0] and v[0] hold.
  int64_t moments_begin() const { return moments_sharded() ? layout().begin(rank) : 0; }
  // Moments sized to the parameters (after the layout changed; the shard at stages 1 and 2), new
  // ones zero; with several ranks, room for the padded vectors the optimizer gathers.
  void fit_moments();
  // Joins rank `rank` of `world` at ZeRO `stage`: whole moments are cut to this rank's shard.
  // Only from an unsharded state (or the same configuration again).
  void shard(int world, int rank, int stage);
  // After a step's backward: counts its labelled tokens and returns the norm of the gradient
  // sums so far (what trainStep reports; a NaN there stops the Trainer before the update).
  double add_backward(int64_t tokens, const ExecContext& x);
  // A copy with a classifier head appended (sessions may still read this state's parameters, so
  // the vector that grows is the copy's), optimizer state included.
  std::shared_ptr<TrainingState> with_head(const ClassifierHead& head, uint64_t seed) const;
};

// Holds `busy` while alive; throws InvalidArgument naming `what` when another call holds it.
class TrainingGuard {
 public:
  TrainingGuard(TrainingState& s, const char* what);
  ~TrainingGuard();
  TrainingGuard(const TrainingGuard&) = delete;
  TrainingGuard& operator=(const TrainingGuard&) = delete;

 private:
  std::atomic<bool>& flag_;
};

// One optimizer step of the whole state: the window's token count is s.tokens (reset to 0).
// lr_scales: learning-rate multipliers of parameter ranges.
OptimizerStepResult step_optimizer(TrainingState& s, const OptimizerStepArgs& args, Comm& comm, const ExecContext& x);

// ---- implementation of the template ----

// `count` values at `offset` of `v` as PEFT's kaiming-uniform draws A [count / in, in], advancing `seed`.
void fill_lora_a(FlatVector& v, int64_t offset, int64_t count, int64_t in, uint64_t& seed);

template <class Dims, class Name>
void add_lora_adapters(Trainable& t, int64_t layers, int projections, const LoraSpec& spec, Dims&& dims, Name&& name) {
  t.lora.assign(static_cast<size_t>(layers), std::vector<LoraSlot>(static_cast<size_t>(projections)));
  uint64_t seed = spec.seed;
  for (int64_t li = 0; li < layers; ++li)
    for (int p = 0; p < projections; ++p) {
      const auto [in, out] = dims(li, p);
      if (in == 0) continue;
      LoraSlot& s = t.lora[li][p];
      const std::string base = name(li, p), group = "layer." + std::to_string(li);
      s.on = true, s.r = spec.r, s.scale = spec.scale, s.dropout = spec.dropout;
      s.a_offset = t.append(base + ".lora_a", TrainableKind::Lora, {spec.r, in}, group);
      s.b_offset = t.append(base + ".lora_b", TrainableKind::Lora, {out, spec.r}, group);
      fill_lora_a(t.params, s.a_offset, spec.r * in, in, seed);
    }
}

}  // namespace tk
