#include "llama_lora.h"

#include <algorithm>
#include <cmath>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "../core/block_cache.h"
#include "../ops/attention.h"
#include "../ops/cross_entropy.h"
#include "../ops/gemm.h"
#include "../ops/lora_linear.h"
#include "../ops/rmsnorm.h"
#include "../ops/rope.h"
#include "../ops/swiglu.h"

namespace tk {
namespace {

// Activation and gradient buffers come from the block cache: the same sizes recur every step.
using Buf = std::vector<float, CachedAllocator<float>>;

struct Ctx {
  const LlamaConfig& c;
  LlamaLora& lora;
  bool bf16;
  bool checkpoint;
  bool train;     // dropout applies
  uint64_t seed;  // of this step's dropout masks
  Isa isa;
  ThreadPool& pool;
  WeightPanelCache* panels;  // bf16 panels of the frozen weights, or null
  // The backward runs through the decoder: with a head over a frozen decoder only the head trains,
  // and nothing below it is kept or run back.
  bool through;
};

// A frozen weight as a B operand, with its kept GEMM panels in bf16: Wᵀ for the forward, W for a
// backward through it.
GemmOperand frozen(const Ctx& ctx, const WeightView& w) {
  GemmOperand o;
  o.weights = &w;
  if (ctx.panels && ctx.bf16) {
    o.panels[1] = ctx.panels->get(w, true, ctx.isa, ctx.pool);
    if (ctx.through) o.panels[0] = ctx.panels->get(w, false, ctx.isa, ctx.pool);
  }
  return o;
}

LoraLinearArgs lora_args(const Ctx& ctx, const LoraSlot& s, const float* x, int64_t n, const WeightView& w) {
  LoraLinearArgs g;
  g.m = n, g.in = w.cols, g.out = w.rows, g.r = s.r;
  g.x = x;
  g.w = frozen(ctx, w);
  g.a = ctx.lora.params.data() + s.a_offset;
  g.b = ctx.lora.params.data() + s.b_offset;
  g.scale = s.scale;
  g.bf16 = ctx.bf16;
  if (ctx.train && s.dropout > 0.0f) {
    g.dropout = s.dropout;
    // One stream per adapter: its offset in the parameter vector is unique.
    g.seed = ctx.seed ^ (static_cast<uint64_t>(s.a_offset + 1) * 0x9e3779b97f4a7c15ULL);
  }
  return g;
}

// y (+)= x·Wᵀ (+ LoRA), adding into y for a residual connection; t [n, r] is saved for the
// backward when the slot is on.
void project(const Ctx& ctx, const LoraSlot& s, const float* x, int64_t n, const WeightView& w, float* y, Buf& t,
             bool residual = false, const GemmPanels* x_panels = nullptr) {
  if (s.on) {
    t.assign(static_cast<size_t>(n * s.r), 0.0f);
    LoraLinearArgs g = lora_args(ctx, s, x, n, w);
    g.accumulate_y = residual;
    g.x_panels = x_panels;
    lora_linear_forward(g, y, t.data(), ctx.isa, ctx.pool);
    return;
  }
  GemmArgs g;
  g.m = n, g.n = w.rows, g.k = w.cols;
  g.a.data = x, g.a.ld = w.cols;
  g.a.panels[0] = x_panels;
  g.b = frozen(ctx, w), g.b.trans = true;
  g.c = y, g.ldc = w.rows, g.beta = residual ? 1.0f : 0.0f, g.bf16 = ctx.bf16;
  gemm(g, ctx.isa, ctx.pool);
}

// An input that several projections read, packed once for their bf16 products (null when the
// step keeps no weight panels: each product then packs its own).
std::unique_ptr<GemmPanels> shared_input(const Ctx& ctx, const float* x, int64_t n, int64_t dim) {
  if (!ctx.panels || !ctx.bf16) return nullptr;
  return gemm_pack_a_panels(x, dim, n, dim, ctx.isa, ctx.pool);
}

// dx (+)= dy·W (+ LoRA), adding the adapter's gradients into lora.grads; with full fine-tuning
// also dW += dyᵀ·x into `dw`.
void project_back(const Ctx& ctx, const LoraSlot& s, const float* x, const float* dy, int64_t n, const WeightView& w,
                  const Buf& t, float* dx, bool accumulate, float* dw = nullptr) {
  const int64_t in = w.cols;
  if (dw) {
    GemmArgs g;
    g.m = w.rows, g.n = in, g.k = n;
    g.a.data = dy, g.a.ld = w.rows, g.a.trans = true;
    g.b.data = x, g.b.ld = in;
    g.c = dw, g.ldc = in, g.beta = 1.0f, g.bf16 = ctx.bf16;
    gemm(g, ctx.isa, ctx.pool);
  }
  // Gradients add straight into dx (accumulate) and into lora.grads: no temporaries.
  if (s.on) {
    LoraLinearArgs g = lora_args(ctx, s, x, n, w);
    g.accumulate_grads = true, g.accumulate_dx = accumulate;
    lora_linear_backward(g, dy, t.data(), dx, ctx.lora.grads.data() + s.a_offset, ctx.lora.grads.data() + s.b_offset,
                         ctx.isa, ctx.pool);
    return;
  }
  if (!dx) return;
  GemmArgs g;
  g.m = n, g.n = in, g.k = w.rows;
  g.a.data = dy, g.a.ld = w.rows;
  g.b = frozen(ctx, w);
  g.c = dx, g.ldc = in, g.beta = accumulate ? 1.0f : 0.0f, g.bf16 = ctx.bf16;
  gemm(g, ctx.isa, ctx.pool);
}

// Gradient slice of a weight in full fine-tuning, or null.
float* full_grad(const Ctx& ctx, int64_t offset) {
  return ctx.lora.full.on && offset >= 0 ? ctx.lora.grads.data() + offset : nullptr;
}

// dst = src with the copying split across the pool.
void copy_into(Buf& dst, const Buf& src, ThreadPool& pool) {
  dst.resize(src.size());
  const int64_t n = static_cast<int64_t>(src.size());
  const int tasks = n < (1 << 16) ? 1 : pool.size();
  pool.run(tasks, [&](int t) {
    const int64_t i0 = n * t / tasks, i1 = n * (t + 1) / tasks;
    std::copy(src.begin() + i0, src.begin() + i1, dst.begin() + i0);
  });
}

struct LayerSaved {
  Buf x_in, h1, q, k, v, att, x_mid, h2, g, u, a;
  std::array<Buf, kProjections> t;
};

// The whole batch at once: every projection runs on [batch · n] rows (so each frozen weight is
// decoded once per direction), attention runs per sequence. Forward, loss, backward.
CrossEntropyResult batch_step(const Ctx& ctx, const LlamaWeights& w, const int32_t* tokens, const int32_t* labels,
                              int64_t batch, int64_t seq, const StepOptions& so) {
  const int32_t* position_ids = so.positions;
  const bool backward = so.backward;
  const float grad_scale = so.grad_scale;
  const bool through = ctx.through;
  const LlamaConfig& c = ctx.c;
  const int64_t qdim = c.heads * c.head_dim, kvdim = c.kv_heads * c.head_dim;
  const int64_t n = batch * seq;  // rows
  std::vector<int32_t> positions(n);
  for (int64_t t = 0; t < n; ++t) positions[t] = position_ids ? position_ids[t] : static_cast<int32_t>(t % seq);
  // Segments: a sequence starts at each row and wherever the position restarts at 0 (packed
  // examples), and attends only within itself.
  AttentionSegments segments;  // {first row, length}
  for (int64_t t = 0; t < n; ++t) {
    if (t % seq == 0 || positions[t] == 0) segments.push_back({t, 0});
    ++segments.back().second;
  }
  const RopeTable rope = rope_table(positions.data(), n, c.head_dim, c.rope_theta, c.interleaved_rope);
  auto attend = [&](const float* q, const float* k, const float* v, float* out) {
    attention_causal_forward(q, k, v, segments, c.heads, c.kv_heads, c.head_dim, out, ctx.isa, ctx.pool, ctx.bf16,
                             c.sliding_window);
  };
  Buf x(n * c.dim);
  for (int64_t t = 0; t < n; ++t) w.embed.decode(tokens[t], 0, c.dim, x.data() + t * c.dim);
  std::vector<LayerSaved> saved(w.layers.size());
  // One layer forward from x (updated in place), filling everything its backward needs.
  auto layer_forward = [&](size_t li, Buf& x) {
    const LlamaLayer& L = w.layers[li];
    const auto& slots = ctx.lora.layers[li];
    LayerSaved& s = saved[li];
    copy_into(s.x_in, x, ctx.pool);
    s.h1.resize(n * c.dim), s.q.resize(n * qdim), s.k.resize(n * kvdim), s.v.resize(n * kvdim), s.att.resize(n * qdim);
    rmsnorm_forward(x.data(), L.attn_norm, n, c.dim, c.eps, s.h1.data(), ctx.pool);
    // q, k and v read the same input: with the weights' panels kept, pack it once for all three.
    const auto h1p = shared_input(ctx, s.h1.data(), n, c.dim);
    project(ctx, slots[kQ], s.h1.data(), n, L.q, s.q.data(), s.t[kQ], false, h1p.get());
    project(ctx, slots[kK], s.h1.data(), n, L.k, s.k.data(), s.t[kK], false, h1p.get());
    project(ctx, slots[kV], s.h1.data(), n, L.v, s.v.data(), s.t[kV], false, h1p.get());
    add_bias(s.q.data(), L.q_bias, n, qdim);  // frozen biases: no gradient of their own
    add_bias(s.k.data(), L.k_bias, n, kvdim);
    add_bias(s.v.data(), L.v_bias, n, kvdim);
    rope_forward(s.q.data(), c.heads, rope, ctx.pool);
    rope_forward(s.k.data(), c.kv_heads, rope, ctx.pool);
    attend(s.q.data(), s.k.data(), s.v.data(), s.att.data());
    project(ctx, slots[kO], s.att.data(), n, L.o, x.data(), s.t[kO], true);  // x += attention
    copy_into(s.x_mid, x, ctx.pool);
    s.h2.resize(n * c.dim), s.g.resize(n * c.ffn), s.u.resize(n * c.ffn), s.a.resize(n * c.ffn);
    rmsnorm_forward(x.data(), L.ffn_norm, n, c.dim, c.eps, s.h2.data(), ctx.pool);
    const auto h2p = shared_input(ctx, s.h2.data(), n, c.dim);
    project(ctx, slots[kGate], s.h2.data(), n, L.gate, s.g.data(), s.t[kGate], false, h2p.get());
    project(ctx, slots[kUp], s.h2.data(), n, L.up, s.u.data(), s.t[kUp], false, h2p.get());
    swiglu_forward(s.g.data(), s.u.data(), n * c.ffn, s.a.data(), ctx.pool, ctx.isa);
    project(ctx, slots[kDown], s.a.data(), n, L.down, x.data(), s.t[kDown], true);  // x += MLP
  };
  // With checkpointing a layer keeps only its input; the backward recomputes the rest.
  auto drop = [](LayerSaved& s) {
    for (Buf* b : {&s.h1, &s.q, &s.k, &s.v, &s.att, &s.x_mid, &s.h2, &s.g, &s.u, &s.a}) Buf().swap(*b);
    for (Buf& t : s.t) Buf().swap(t);
  };
  for (size_t li = 0; li < w.layers.size(); ++li) {
    layer_forward(li, x);
    if (ctx.checkpoint || !through) drop(saved[li]);
  }
  Buf hf(n * c.dim), dh(n * c.dim), dx(n * c.dim);
  rmsnorm_forward(x.data(), w.out_norm, n, c.dim, c.eps, hf.data(), ctx.pool);
  const FullTraining& full = ctx.lora.full;
  CrossEntropyResult ce;
  if (ctx.lora.head.on) {
    if (backward) std::fill(dh.begin(), dh.end(), 0.0f);  // the head writes only the rows it pools
    ce = classifier_head_step(ctx.lora.head, ctx.lora.params.data(), ctx.lora.grads.data(), hf.data(), batch, seq, so.lengths,
                              labels, grad_scale, so.head_logits, backward ? dh.data() : nullptr, ctx.pool);
    if (ce.count == 0 || !through) return ce;
  } else {
    // LM head and loss: in each sequence, position t predicts labels[t + 1].
    Buf logits(n * c.vocab);
    {
      GemmArgs g;
      g.m = n, g.n = c.vocab, g.k = c.dim;
      g.a.data = hf.data(), g.a.ld = c.dim;
      g.b = frozen(ctx, w.lm_head), g.b.trans = true;
      g.c = logits.data(), g.ldc = c.vocab, g.bf16 = ctx.bf16;
      gemm(g, ctx.isa, ctx.pool);
    }
    std::vector<int32_t> shifted(n, kIgnoreIndex);
    for (int64_t t = 0; t + 1 < n; ++t)  // never across a row or an example boundary
      if ((t + 1) % seq != 0 && positions[t + 1] != 0) shifted[t] = labels[t + 1];
    ce = cross_entropy(logits.data(), shifted.data(), n, c.vocab, backward, grad_scale, ctx.pool, ctx.isa);
    if (ce.count == 0 || !backward) return ce;  // logits now hold d(mean loss)/d(logits)
    {
      GemmArgs g;
      g.m = n, g.n = c.dim, g.k = c.vocab;
      g.a.data = logits.data(), g.a.ld = c.vocab;
      g.b = frozen(ctx, w.lm_head);
      g.c = dh.data(), g.ldc = c.dim, g.bf16 = ctx.bf16;
      gemm(g, ctx.isa, ctx.pool);
    }
    if (full.on) {  // LM head: dHead += dlogitsᵀ·hf (into the embedding when tied)
      GemmArgs g;
      g.m = c.vocab, g.n = c.dim, g.k = n;
      g.a.data = logits.data(), g.a.ld = c.vocab, g.a.trans = true;
      g.b.data = hf.data(), g.b.ld = c.dim;
      g.c = full_grad(ctx, full.lm_head >= 0 ? full.lm_head : full.embed), g.ldc = c.dim, g.beta = 1.0f, g.bf16 = ctx.bf16;
      gemm(g, ctx.isa, ctx.pool);
    }
  }
  rmsnorm_backward(x.data(), w.out_norm, dh.data(), n, c.dim, c.eps, dx.data(), full_grad(ctx, full.out_norm), ctx.pool);
  for (size_t li = w.layers.size(); li-- > 0;) {
    const LlamaLayer& L = w.layers[li];
    const auto& slots = ctx.lora.layers[li];
    LayerSaved& s = saved[li];
    if (ctx.checkpoint) {  // recompute this layer's activations from its saved input
      Buf replay = s.x_in;
      layer_forward(li, replay);
    }
    auto dW = [&](LlamaProjection p) { return full.on ? full_grad(ctx, full.layers[li].proj[p]) : nullptr; };
    // MLP: x_out = x_mid + down(swiglu(gate(h2), up(h2))).
    Buf da(n * c.ffn), dg(n * c.ffn), du(n * c.ffn), dh2(n * c.dim);
    project_back(ctx, slots[kDown], s.a.data(), dx.data(), n, L.down, s.t[kDown], da.data(), false, dW(kDown));
    swiglu_backward(s.g.data(), s.u.data(), da.data(), n * c.ffn, dg.data(), du.data(), ctx.pool, ctx.isa);
    project_back(ctx, slots[kGate], s.h2.data(), dg.data(), n, L.gate, s.t[kGate], dh2.data(), false, dW(kGate));
    project_back(ctx, slots[kUp], s.h2.data(), du.data(), n, L.up, s.t[kUp], dh2.data(), true, dW(kUp));
    Buf dmid(n * c.dim);
    rmsnorm_backward(s.x_mid.data(), L.ffn_norm, dh2.data(), n, c.dim, c.eps, dmid.data(),
                     full.on ? full_grad(ctx, full.layers[li].ffn_norm) : nullptr, ctx.pool, dx.data());
    // Attention: x_mid = x_in + o(attn(rope(q(h1)), rope(k(h1)), v(h1))).
    Buf datt(n * qdim), dq(n * qdim), dk(n * kvdim), dv(n * kvdim), dh1(n * c.dim);
    project_back(ctx, slots[kO], s.att.data(), dmid.data(), n, L.o, s.t[kO], datt.data(), false, dW(kO));
    attention_causal_backward(s.q.data(), s.k.data(), s.v.data(), datt.data(), segments, c.heads, c.kv_heads, c.head_dim,
                              dq.data(), dk.data(), dv.data(), ctx.isa, ctx.pool, ctx.bf16, c.sliding_window);
    rope_backward(dq.data(), c.heads, rope, ctx.pool);
    rope_backward(dk.data(), c.kv_heads, rope, ctx.pool);
    // The bottom layer's input gradient only reaches the embedding, which trains only in full
    // fine-tuning: otherwise its three input products and the norm's backward are skipped.
    float* dh1p = li > 0 || full.on ? dh1.data() : nullptr;
    project_back(ctx, slots[kQ], s.h1.data(), dq.data(), n, L.q, s.t[kQ], dh1p, false, dW(kQ));
    project_back(ctx, slots[kK], s.h1.data(), dk.data(), n, L.k, s.t[kK], dh1p, true, dW(kK));
    project_back(ctx, slots[kV], s.h1.data(), dv.data(), n, L.v, s.t[kV], dh1p, true, dW(kV));
    if (dh1p)
      rmsnorm_backward(s.x_in.data(), L.attn_norm, dh1.data(), n, c.dim, c.eps, dx.data(),
                       full.on ? full_grad(ctx, full.layers[li].attn_norm) : nullptr, ctx.pool, dmid.data());
    if (ctx.checkpoint) drop(s);
  }
  if (full.on) {  // embedding rows: dE[token] += dx[t]
    float* de = full_grad(ctx, full.embed);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < c.dim; ++i) de[static_cast<int64_t>(tokens[t]) * c.dim + i] += dx[t * c.dim + i];
  }
  return ce;
}

}  // namespace

StepResult llama_lora_step(const LlamaConfig& cfg, const LlamaWeights& w, LlamaLora& lora, const int32_t* tokens,
                           const int32_t* labels, int64_t batch, int64_t n, const StepOptions& o, Isa isa,
                           ThreadPool& pool) {
  const bool through = o.backward && (!lora.head.on || lora.backbone_trains());
  Ctx ctx{cfg, lora, o.bf16, o.checkpoint, o.backward, o.seed, isa, pool, lora.full.on ? nullptr : o.panels, through};
  // The batch loss is the mean over every labelled token of every sequence.
  const CrossEntropyResult ce = batch_step(ctx, w, tokens, labels, batch, n, o);
  // The large buffers stay in the block cache for the next step (emptied if it outgrew the step);
  // smaller ones went back to this worker thread's malloc arena: hand those back so the resident
  // size does not grow by an arena per libuv thread.
  BlockCache::instance().end_step();
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  StepResult result;
  result.loss = ce.loss;
  result.count = ce.count;
  return result;
}

}  // namespace tk
