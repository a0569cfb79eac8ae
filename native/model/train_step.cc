#include "train_step.h"

#include <algorithm>

#include "../core/error.h"

namespace tk {
namespace {

// A weight as a B operand (the backend keeps it prepared when the step lets it).
GemmOperand frozen(const WeightView& w) {
  GemmOperand o;
  o.weights = &w;
  return o;
}

LoraLinearArgs lora_args(const StepContext& ctx, const Linear& l, const float* x, int64_t n) {
  const LoraSlot& s = *l.lora;
  LoraLinearArgs g;
  g.m = n, g.in = l.in(), g.out = l.out(), g.r = s.r;
  g.x = x;
  g.w = frozen(*l.w);
  g.w_in_out = l.in_out;
  g.a = ctx.t.params.data() + s.a_offset;
  g.b = ctx.t.params.data() + s.b_offset;
  g.scale = s.scale;
  g.bf16 = ctx.o.bf16;
  if (ctx.train && s.dropout > 0.0f) {
    g.dropout = s.dropout;
    // One stream per adapter: its offset in the parameter vector is unique.
    g.seed = ctx.o.seed ^ (static_cast<uint64_t>(s.a_offset + 1) * 0x9e3779b97f4a7c15ULL);
  }
  return g;
}

}  // namespace

StepContext::StepContext(Trainable& t_, const StepOptions& o_, const ExecContext& x_, bool ends_step)
    : t(t_),
      o(o_),
      train(o_.backward),
      through(o_.backward && (!t_.head.on || t_.backbone_trains())),
      x(x_),
      op(*x_.op),
      ends_step_(ends_step) {
  x.keep_weights = o.keep_weights && o.bf16 && !t.full.on;
}

StepContext::~StepContext() {
  if (ends_step_) x.backend->end_step();
}

void project(const StepContext& ctx, const Linear& l, const float* x, int64_t n, float* y, Buf& t, bool residual,
             const GemmPanels* x_panels) {
  if (l.lora) {
    t = ctx.buffer(n * l.lora->r, true);
    LoraLinearArgs g = lora_args(ctx, l, x, n);
    g.accumulate_y = residual;
    g.x_panels = x_panels;
    ctx.op.lora_linear_forward(ctx.x, g, y, t.data());
  } else {
    GemmArgs g;
    g.m = n, g.n = l.out(), g.k = l.in();
    g.a.data = x, g.a.ld = l.in();
    g.a.panels[0] = x_panels;
    g.b = frozen(*l.w), g.b.trans = !l.in_out;
    g.c = y, g.ldc = l.out(), g.beta = residual ? 1.0f : 0.0f, g.bf16 = ctx.o.bf16;
    ctx.op.gemm(ctx.x, g);
  }
  if (l.bias) ctx.op.bias_forward(ctx.x, y, l.bias, n, l.out());
}

void project_back(const StepContext& ctx, const Linear& l, const float* x, const float* dy, int64_t n, const Buf& t, float* dx,
                  bool accumulate) {
  const int64_t in = l.in(), out = l.out();
  if (l.dw) {  // dW += dyᵀ·x for [out, in] storage, xᵀ·dy for [in, out]
    GemmArgs g;
    g.k = n;
    if (l.in_out) {
      g.m = in, g.n = out;
      g.a.data = x, g.a.ld = in, g.a.trans = true;
      g.b.data = dy, g.b.ld = out;
      g.ldc = out;
    } else {
      g.m = out, g.n = in;
      g.a.data = dy, g.a.ld = out, g.a.trans = true;
      g.b.data = x, g.b.ld = in;
      g.ldc = in;
    }
    g.c = l.dw, g.beta = 1.0f, g.bf16 = ctx.o.bf16;
    ctx.op.gemm(ctx.x, g);
  }
  if (l.db) ctx.op.bias_backward(ctx.x, l.db, dy, n, out);
  // Gradients add straight into dx (accumulate) and into the state's gradients: no temporaries.
  if (l.lora) {
    LoraLinearArgs g = lora_args(ctx, l, x, n);
    g.accumulate_grads = true, g.accumulate_dx = accumulate;
    float* grads = ctx.t.grads.data();
    ctx.op.lora_linear_backward(ctx.x, g, dy, t.data(), dx, grads + l.lora->a_offset, grads + l.lora->b_offset);
    return;
  }
  if (!dx) return;
  GemmArgs g;
  g.m = n, g.n = in, g.k = out;
  g.a.data = dy, g.a.ld = out;
  g.b = frozen(*l.w), g.b.trans = l.in_out;
  g.c = dx, g.ldc = in, g.beta = accumulate ? 1.0f : 0.0f, g.bf16 = ctx.o.bf16;
  ctx.op.gemm(ctx.x, g);
}

namespace {
StepOptions forward_only() {
  StepOptions o;
  o.backward = false;
  return o;
}
}  // namespace

ForwardContext::ForwardContext(const Trainable* t, const ExecContext& x)
    : o(forward_only()), ctx(t ? const_cast<Trainable&>(*t) : none, o, x, false) {}  // read-only without a backward

std::vector<int32_t> positions_from(int64_t offset, int64_t n) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>(offset + i);
  return p;
}

std::unique_ptr<GemmPanels> shared_input(const StepContext& ctx, const float* x, int64_t n, int64_t dim) {
  if (!ctx.o.bf16) return nullptr;
  return ctx.op.prepare_input(ctx.x, x, n, dim);
}

StepRows step_rows(const int32_t* position_ids, int64_t batch, int64_t seq) {
  StepRows r;
  r.batch = batch, r.seq = seq;
  const int64_t n = batch * seq;
  r.positions.resize(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) r.positions[t] = position_ids ? position_ids[t] : static_cast<int32_t>(t % seq);
  for (int64_t t = 0; t < n; ++t) {
    if (t % seq == 0 || r.positions[t] == 0) r.segments.push_back({t, 0});
    ++r.segments.back().second;
  }
  return r;
}

CrossEntropyResult decoder_top(const StepContext& ctx, const WeightView& lm_head, float* lm_head_grad, const float* hf,
                               int64_t dim, int64_t vocab, const StepRows& rows, const int32_t* labels, float* dh,
                               float logit_softcap) {
  const int64_t n = rows.batch * rows.seq;
  if (ctx.o.features) {
    Buf pooled = ctx.buffer(rows.batch * dim);
    ctx.op.classifier_pool(ctx.x, ctx.o.mean_pool, hf, rows.batch, rows.seq, dim, ctx.o.lengths, pooled.data());
    ctx.x.backend->copy_to_host(ctx.o.features, pooled.data(), static_cast<size_t>(pooled.size()) * sizeof(float));
    return {};
  }
  if (ctx.t.head.on && !ctx.o.lm_head) {
    if (dh) ctx.x.backend->fill_zero(dh, static_cast<size_t>(n * dim) * sizeof(float));  // the head writes only the rows it pools
    return ctx.op.classifier_head_step(ctx.x, ctx.t.head, ctx.t.params.data(), ctx.t.grads.data(), hf, rows.batch, rows.seq,
                                       ctx.o.lengths, labels, ctx.o.logits, dh);
  }
  std::vector<int32_t> shifted(static_cast<size_t>(n), kIgnoreIndex);
  for (int64_t t = 0; t + 1 < n; ++t)  // never across a row or an example boundary
    if ((t + 1) % rows.seq != 0 && rows.positions[t + 1] != 0) shifted[t] = labels[t + 1];
  const int64_t chunk = std::min(n, ctx.o.logit_rows > 0 ? ctx.o.logit_rows : std::max<int64_t>(1, kLogitChunkValues / vocab));
  Buf logits = ctx.buffer(chunk * vocab);
  // The capped logits, for the backward through the cap (cross_entropy overwrites its input).
  Buf capped = ctx.buffer(logit_softcap > 0 && dh ? chunk * vocab : 0);
  CrossEntropyResult total;
  double loss_sum = 0.0, last_loss = 0.0;
  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    const int64_t m = std::min(chunk, n - r0);
    GemmArgs g;
    g.m = m, g.n = vocab, g.k = dim;
    g.a.data = hf + r0 * dim, g.a.ld = dim;
    g.b = frozen(lm_head), g.b.trans = true;
    g.c = logits.data(), g.ldc = vocab, g.bf16 = ctx.o.bf16;
    ctx.op.gemm(ctx.x, g);
    if (logit_softcap > 0) {
      ctx.op.softcap(ctx.x, logits.data(), logit_softcap, m * vocab);
      if (dh) ctx.x.backend->copy(capped.data(), logits.data(), static_cast<size_t>(m * vocab) * sizeof(float));
    }
    if (ctx.o.logits)
      ctx.x.backend->copy_to_host(ctx.o.logits + r0 * vocab, logits.data(), static_cast<size_t>(m * vocab) * sizeof(float));
    const CrossEntropyResult ce = ctx.op.cross_entropy(ctx.x, logits.data(), shifted.data() + r0, m, vocab, dh != nullptr);
    loss_sum += ce.loss * static_cast<double>(ce.count), total.count += ce.count, last_loss = ce.loss;
    if (!dh) continue;
    if (ce.count == 0) {  // nothing labelled here: no gradient (the logits now hold zeros)
      ctx.x.backend->fill_zero(dh + r0 * dim, static_cast<size_t>(m * dim) * sizeof(float));
      continue;
    }
    // The logits now hold d(summed loss)/d(logits) of these rows.
    if (logit_softcap > 0) ctx.op.softcap_backward(ctx.x, capped.data(), logits.data(), logit_softcap, m * vocab);
    g = GemmArgs();
    g.m = m, g.n = dim, g.k = vocab;
    g.a.data = logits.data(), g.a.ld = vocab;
    g.b = frozen(lm_head);
    g.c = dh + r0 * dim, g.ldc = dim, g.bf16 = ctx.o.bf16;
    ctx.op.gemm(ctx.x, g);
    if (lm_head_grad) {  // dHead += dlogitsᵀ·hf
      g = GemmArgs();
      g.m = vocab, g.n = dim, g.k = m;
      g.a.data = logits.data(), g.a.ld = vocab, g.a.trans = true;
      g.b.data = hf + r0 * dim, g.b.ld = dim;
      g.c = lm_head_grad, g.ldc = dim, g.beta = 1.0f, g.bf16 = ctx.o.bf16;
      ctx.op.gemm(ctx.x, g);
    }
  }
  // The mean over every labelled row (one chunk: its own mean, to the bit as before chunks).
  total.loss = chunk >= n ? last_loss : total.count ? loss_sum / static_cast<double>(total.count) : 0.0;
  return total;
}

CrossEntropyResult head_step(Trainable& t, const float* features, int64_t batch, const int32_t* labels, bool backward,
                             float* logits, const ExecContext& x) {
  check_arg(t.head.on && !t.head.token_level, "Expected a sequence classifier (addClassifier) before headStep()");
  ClassifierHead row = t.head;
  row.mean_pool = false;  // features are already one row per sequence
  Buffer f(x, batch * row.dim), dx(x, backward ? batch * row.dim : 0);
  x.backend->copy_to_device(f.data(), features, static_cast<size_t>(f.size()) * sizeof(float));
  return x.op->classifier_head_step(x, row, t.params.data(), t.grads.data(), f.data(), batch, 1, nullptr, labels, logits,
                                    backward ? dx.data() : nullptr);
}

}  // namespace tk
