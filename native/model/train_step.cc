#include "train_step.h"

#include <algorithm>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "../core/error.h"
#include "../ops/lora_linear.h"

namespace tk {
namespace {

// A frozen weight as a B operand, with its kept bf16 GEMM panels: op(B) of the forward, and the
// other orientation for a backward through it.
GemmOperand frozen(const StepContext& ctx, const WeightView& w, bool in_out) {
  GemmOperand o;
  o.weights = &w;
  if (ctx.panels && ctx.o.bf16) {
    const bool forward_trans = !in_out;
    o.panels[forward_trans ? 1 : 0] = ctx.panels->get(w, forward_trans, ctx.isa, ctx.pool);
    if (ctx.through) o.panels[forward_trans ? 0 : 1] = ctx.panels->get(w, !forward_trans, ctx.isa, ctx.pool);
  }
  return o;
}

LoraLinearArgs lora_args(const StepContext& ctx, const Linear& l, const float* x, int64_t n) {
  const LoraSlot& s = *l.lora;
  LoraLinearArgs g;
  g.m = n, g.in = l.in(), g.out = l.out(), g.r = s.r;
  g.x = x;
  g.w = frozen(ctx, *l.w, l.in_out);
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

// db [dim] += Σ over rows of dy [n, dim], split by columns (each column summed in row order).
void add_column_sums(float* db, const float* dy, int64_t n, int64_t dim, ThreadPool& pool) {
  const int tasks = n * dim < (1 << 16) ? 1 : std::min<int>(pool.size(), static_cast<int>((dim + 15) / 16));
  pool.run(tasks, [&](int t) {
    const int64_t j0 = dim * t / tasks, j1 = dim * (t + 1) / tasks;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = j0; j < j1; ++j) db[j] += dy[r * dim + j];
  });
}

}  // namespace

StepContext::StepContext(Trainable& t_, const StepOptions& o_, Isa isa_, ThreadPool& pool_)
    : t(t_),
      o(o_),
      train(o_.backward),
      through(o_.backward && (!t_.head.on || t_.backbone_trains())),
      isa(isa_),
      pool(pool_),
      panels(t_.full.on ? nullptr : o_.panels) {}

void project(const StepContext& ctx, const Linear& l, const float* x, int64_t n, float* y, Buf& t, bool residual,
             const GemmPanels* x_panels) {
  if (l.lora) {
    t.assign(static_cast<size_t>(n * l.lora->r), 0.0f);
    LoraLinearArgs g = lora_args(ctx, l, x, n);
    g.accumulate_y = residual;
    g.x_panels = x_panels;
    lora_linear_forward(g, y, t.data(), ctx.isa, ctx.pool);
  } else {
    GemmArgs g;
    g.m = n, g.n = l.out(), g.k = l.in();
    g.a.data = x, g.a.ld = l.in();
    g.a.panels[0] = x_panels;
    g.b = frozen(ctx, *l.w, l.in_out), g.b.trans = !l.in_out;
    g.c = y, g.ldc = l.out(), g.beta = residual ? 1.0f : 0.0f, g.bf16 = ctx.o.bf16;
    gemm(g, ctx.isa, ctx.pool);
  }
  add_bias(y, l.bias, n, l.out(), ctx.pool);
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
    gemm(g, ctx.isa, ctx.pool);
  }
  if (l.db) add_column_sums(l.db, dy, n, out, ctx.pool);
  // Gradients add straight into dx (accumulate) and into the state's gradients: no temporaries.
  if (l.lora) {
    LoraLinearArgs g = lora_args(ctx, l, x, n);
    g.accumulate_grads = true, g.accumulate_dx = accumulate;
    float* grads = ctx.t.grads.data();
    lora_linear_backward(g, dy, t.data(), dx, grads + l.lora->a_offset, grads + l.lora->b_offset, ctx.isa, ctx.pool);
    return;
  }
  if (!dx) return;
  GemmArgs g;
  g.m = n, g.n = in, g.k = out;
  g.a.data = dy, g.a.ld = out;
  g.b = frozen(ctx, *l.w, l.in_out), g.b.trans = l.in_out;
  g.c = dx, g.ldc = in, g.beta = accumulate ? 1.0f : 0.0f, g.bf16 = ctx.o.bf16;
  gemm(g, ctx.isa, ctx.pool);
}

std::unique_ptr<GemmPanels> shared_input(const StepContext& ctx, const float* x, int64_t n, int64_t dim) {
  if (!ctx.panels || !ctx.o.bf16) return nullptr;
  return gemm_pack_a_panels(x, dim, n, dim, ctx.isa, ctx.pool);
}

void add_bias(float* y, const float* bias, int64_t n, int64_t dim, ThreadPool& pool) {
  if (!bias) return;
  parallel_for(&pool, 0, n, (int64_t{1} << 16) / dim + 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t i = 0; i < dim; ++i) y[r * dim + i] += bias[i];
  });
}

void copy_into(Buf& dst, const Buf& src, ThreadPool& pool) {
  dst.resize(src.size());
  parallel_for(&pool, 0, static_cast<int64_t>(src.size()), int64_t{1} << 16, [&](int64_t i0, int64_t i1) {
    std::copy(src.begin() + i0, src.begin() + i1, dst.begin() + i0);
  });
}

void add_into(float* a, const float* b, int64_t n, ThreadPool& pool) {
  parallel_for(&pool, 0, n, int64_t{1} << 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) a[i] += b[i];
  });
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
                               int64_t dim, int64_t vocab, const StepRows& rows, const int32_t* labels, float* dh) {
  const int64_t n = rows.batch * rows.seq;
  if (ctx.o.features) {
    classifier_pool(ctx.o.mean_pool, hf, rows.batch, rows.seq, dim, ctx.o.lengths, ctx.o.features);
    return {};
  }
  if (ctx.t.head.on && !ctx.o.lm_head) {
    if (dh) std::fill(dh, dh + n * dim, 0.0f);  // the head writes only the rows it pools
    return classifier_head_step(ctx.t.head, ctx.t.params.data(), ctx.t.grads.data(), hf, rows.batch, rows.seq, ctx.o.lengths,
                                labels, ctx.o.logits, dh, ctx.pool);
  }
  Buf logits(n * vocab);
  GemmArgs g;
  g.m = n, g.n = vocab, g.k = dim;
  g.a.data = hf, g.a.ld = dim;
  g.b = frozen(ctx, lm_head, false), g.b.trans = true;
  g.c = logits.data(), g.ldc = vocab, g.bf16 = ctx.o.bf16;
  gemm(g, ctx.isa, ctx.pool);
  if (ctx.o.logits) std::copy(logits.begin(), logits.end(), ctx.o.logits);
  std::vector<int32_t> shifted(static_cast<size_t>(n), kIgnoreIndex);
  for (int64_t t = 0; t + 1 < n; ++t)  // never across a row or an example boundary
    if ((t + 1) % rows.seq != 0 && rows.positions[t + 1] != 0) shifted[t] = labels[t + 1];
  const CrossEntropyResult ce = cross_entropy(logits.data(), shifted.data(), n, vocab, dh != nullptr, 1.0f, ctx.pool, ctx.isa);
  if (!dh || ce.count == 0) return ce;  // logits now hold d(summed loss)/d(logits)
  g = GemmArgs();
  g.m = n, g.n = dim, g.k = vocab;
  g.a.data = logits.data(), g.a.ld = vocab;
  g.b = frozen(ctx, lm_head, false);
  g.c = dh, g.ldc = dim, g.bf16 = ctx.o.bf16;
  gemm(g, ctx.isa, ctx.pool);
  if (lm_head_grad) {  // dHead += dlogitsᵀ·hf
    g = GemmArgs();
    g.m = vocab, g.n = dim, g.k = n;
    g.a.data = logits.data(), g.a.ld = vocab, g.a.trans = true;
    g.b.data = hf, g.b.ld = dim;
    g.c = lm_head_grad, g.ldc = dim, g.beta = 1.0f, g.bf16 = ctx.o.bf16;
    gemm(g, ctx.isa, ctx.pool);
  }
  return ce;
}

CrossEntropyResult head_step(Trainable& t, const float* features, int64_t batch, const int32_t* labels, bool backward,
                             float* logits, ThreadPool& pool) {
  check_arg(t.head.on && !t.head.token_level, "Expected a sequence classifier (addClassifier) before headStep()");
  ClassifierHead row = t.head;
  row.mean_pool = false;  // features are already one row per sequence
  std::vector<float> dx(backward ? static_cast<size_t>(batch * row.dim) : 0);
  return classifier_head_step(row, t.params.data(), t.grads.data(), features, batch, 1, nullptr, labels, logits,
                              backward ? dx.data() : nullptr, pool);
}

void scatter_rows(float* de, const int32_t* ids, const float* dx, int64_t n, int64_t dim, ThreadPool& pool) {
  const int tasks = n * dim < (1 << 16) ? 1 : std::min<int>(pool.size(), static_cast<int>((dim + 15) / 16));
  pool.run(tasks, [&](int t) {
    const int64_t j0 = dim * t / tasks, j1 = dim * (t + 1) / tasks;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = j0; j < j1; ++j) de[static_cast<int64_t>(ids[r]) * dim + j] += dx[r * dim + j];
  });
}

void end_step() {
  BlockCache::instance().end_step();
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace tk
