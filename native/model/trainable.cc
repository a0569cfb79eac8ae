#include "trainable.h"

#include <algorithm>
#include <cmath>

#include "../core/error.h"
#include "../core/random.h"

namespace tk {

int64_t TrainableTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t Trainable::append(std::string name, TrainableKind kind, std::vector<int64_t> shape, std::string group) {
  TrainableTensor t;
  t.name = std::move(name), t.kind = kind, t.shape = std::move(shape), t.group = std::move(group);
  t.offset = static_cast<int64_t>(params.size());
  params.resize(t.offset + t.numel());
  grads.resize(params.size());
  tensors.push_back(std::move(t));
  return tensors.back().offset;
}

const TrainableTensor* Trainable::find(const std::string& name) const {
  for (const TrainableTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<ParamGroup> Trainable::groups() const {
  std::vector<ParamGroup> out;
  for (const TrainableTensor& t : tensors) {
    if (!out.empty() && out.back().name == t.group && out.back().offset + out.back().length == t.offset) {
      out.back().length += t.numel();
      continue;
    }
    out.push_back({t.group, t.offset, t.numel()});
  }
  return out;
}

bool Trainable::backbone_trains() const {
  if (full.on) return true;
  for (const auto& slots : lora)
    for (const LoraSlot& s : slots)
      if (s.on) return true;
  return false;
}

const LoraSlot* Trainable::slot(size_t layer, int projection) const {
  if (layer >= lora.size() || projection >= static_cast<int>(lora[layer].size())) return nullptr;
  const LoraSlot& s = lora[layer][projection];
  return s.on ? &s : nullptr;
}

WeightView Trainable::full_view(int64_t offset, int64_t rows, int64_t cols) const {
  WeightView v;
  v.format = WeightFormat::F32, v.rows = rows, v.cols = cols, v.ld = cols, v.data = params.data() + offset;
  return v;
}

void fill_lora_a(FlatVector& v, int64_t offset, int64_t count, int64_t in, uint64_t& seed) {
  std::vector<float> a(static_cast<size_t>(count));  // drawn on the host, in order
  fill_uniform(a.data(), count, static_cast<float>(1.0 / std::sqrt(static_cast<double>(in))), seed);
  v.write(offset, count, a.data());
}

void add_classifier_head(Trainable& t, ClassifierHead h, uint64_t seed) {
  check_arg(!t.head.on, "Expected one classifier per model; it already has one");
  h.on = true;
  const int64_t first = h.hidden > 0 ? h.hidden : h.classes;
  h.w1 = t.append("head.w1", TrainableKind::Head, {first, h.dim}, "head");
  h.b1 = t.append("head.b1", TrainableKind::Head, {first}, "head");
  // Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), as torch.nn.Linear initializes its weight.
  fill_lora_a(t.params, h.w1, first * h.dim, h.dim, seed);
  if (h.hidden > 0) {
    h.w2 = t.append("head.w2", TrainableKind::Head, {h.classes, h.hidden}, "head");
    h.b2 = t.append("head.b2", TrainableKind::Head, {h.classes}, "head");
    fill_lora_a(t.params, h.w2, h.classes * h.hidden, h.hidden, seed);
  }
  t.head = h;
}

int64_t append_full(Trainable& t, const std::string& name, const std::string& group, const WeightView& w,
                    const ExecContext& x) {
  const int64_t at = t.append(name, TrainableKind::Full, {w.rows, w.cols}, group);
  std::vector<int32_t> rows(static_cast<size_t>(w.rows));
  for (int64_t r = 0; r < w.rows; ++r) rows[r] = static_cast<int32_t>(r);
  x.op->embedding_forward(x, w, rows.data(), w.rows, t.params.data() + at, false);  // every row, decoded
  return at;
}

int64_t append_full(Trainable& t, const std::string& name, const std::string& group, const float* v, int64_t n) {
  const int64_t at = t.append(name, TrainableKind::Full, {n}, group);
  t.params.backend()->copy(t.params.data() + at, v, static_cast<size_t>(n) * sizeof(float));  // a weight of the backend
  return at;
}

void TrainingState::fit_moments() {
  const ShardLayout l = layout();
  if (world > 1) t.params.reserve(l.padded()), t.grads.reserve(l.padded());
  const int64_t n = tk::moments_sharded(l, stage) ? l.shard : l.size;
  m.resize(n);
  v.resize(n);
}

void TrainingState::shard(int new_world, int new_rank, int new_stage) {
  check_arg(new_world >= 1 && new_rank >= 0 && new_rank < new_world && new_stage >= 0 && new_stage <= 2,
            "Expected a rank in [0, world) and a ZeRO stage 0, 1 or 2");
  if (new_world == world && new_rank == rank && new_stage == stage) return;
  check_arg(!moments_sharded(), "Expected the training state to be sharded once (it is rank " + std::to_string(rank) + " of " +
                                    std::to_string(world) + " at stage " + std::to_string(stage) + ")");
  const ShardLayout l = shard_layout(t.params.size(), new_world);
  if (tk::moments_sharded(l, new_stage)) {
    const int64_t b = l.begin(new_rank), e = l.end(new_rank);
    for (FlatVector* mv : {&m, &v}) {
      FlatVector part(mv->backend());
      part.resize(l.shard);
      if (e > b) t.params.backend()->copy(part.data(), mv->data() + b, static_cast<size_t>(e - b) * sizeof(float));
      mv->swap(part);
    }
  }
  world = new_world, rank = new_rank, stage = new_stage;
  fit_moments();
}

std::vector<GradientGroup> TrainingState::gradient_groups() const {
  std::vector<GradientGroup> out;
  for (const ParamGroup& g : t.groups()) out.push_back({g.name, g.offset, g.length});
  return out;
}

double TrainingState::add_backward(int64_t count, const ExecContext& x) {
  tokens += static_cast<double>(count);
  // ZeRO-2 keeps only this rank's shard (the others' pages were handed back: reading them would
  // only fault them in as zeros).
  const ShardLayout l = layout();
  const int64_t begin = reduces_in_backward() ? l.begin(rank) : 0, end = reduces_in_backward() ? l.end(rank) : l.size;
  const int64_t n = end - begin, chunks = (n + kNormChunk - 1) / kNormChunk;
  std::vector<double> partials(static_cast<size_t>(chunks));
  if (chunks) x.op->sum_squares_chunks(x, t.grads.data() + begin, n, kNormChunk, partials.data());
  double sum = 0.0;
  for (double p : partials) sum += p;  // in chunk order
  return std::sqrt(sum);
}

std::shared_ptr<TrainingState> TrainingState::with_head(const ClassifierHead& head, uint64_t seed) const {
  check_arg(world == 1, "Expected addClassifier() before data-parallel training starts (the optimizer state is already split over the ranks)");
  auto next = std::make_shared<TrainingState>(t.params.backend());
  next->t = t, next->m = m, next->v = v, next->step = step, next->tokens = tokens;
  add_classifier_head(next->t, head, seed);
  next->fit_moments();
  return next;
}

TrainingGuard::TrainingGuard(TrainingState& s, const char* what) : flag_(s.busy) {
  bool expected = false;
  check_arg(flag_.compare_exchange_strong(expected, true), std::string("Expected no other training call running during ") + what);
}

TrainingGuard::~TrainingGuard() { flag_ = false; }

OptimizerStepResult step_optimizer(TrainingState& s, const OptimizerStepArgs& args, Comm& comm, const ExecContext& x) {
  const ShardLayout layout = s.layout();
  check_arg(comm.world() == s.world && comm.rank() == s.rank,
            "Expected the optimizer step on the group the training state was sharded for (rank " + std::to_string(s.rank) + " of " +
                std::to_string(s.world) + ")");
  OptimizerStepArgs a = args;
  a.tokens = s.tokens;
  a.stage = s.stage;
  a.grads_reduced = s.reduces_in_backward();
  const OptimizerStepResult r = optimizer_step(s.t.params.data(), s.t.grads.data(), s.m.data(), s.v.data(), layout, a,
                                               s.step + 1, comm, x);
  if (r.tokens > 0) ++s.step;
  s.tokens = 0;
  return r;
}

}  // namespace tk
