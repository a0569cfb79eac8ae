#include "gpt2.h"

#include "train_step.h"

namespace tk {

const WeightView& gpt2_projection(const Gpt2Layer& L, int p) {
  const WeightView* v[kGpt2Projections] = {&L.attn, &L.proj, &L.fc, &L.fc_proj};
  return *v[p];
}

const float* gpt2_bias(const Gpt2Layer& L, int p) {
  const float* b[kGpt2Projections] = {L.attn_b, L.proj_b, L.fc_b, L.fc_proj_b};
  return b[p];
}

WeightView gpt2_positions(const Gpt2Weights& w, const Gpt2Config& c) {
  WeightView v;
  v.format = WeightFormat::F32, v.rows = c.positions, v.cols = c.dim, v.data = w.wpe, v.ld = c.dim;
  return v;
}

Gpt2Weights gpt2_weights_with(const Gpt2Weights& w, const Gpt2Config& c, const Trainable* t) {
  if (!t || !t->full.on) return w;
  const FullLayout& F = t->full;
  const float* P = t->params.data();
  Gpt2Weights r = w;
  r.wte = t->full_view(F.model[kWte], c.vocab, c.dim);
  r.wpe = P + F.model[kWpe];
  r.lnf_w = P + F.model[kLnfW], r.lnf_b = P + F.model[kLnfB];
  for (size_t li = 0; li < r.layers.size(); ++li) {
    Gpt2Layer& L = r.layers[li];
    const std::vector<int64_t>& at = F.layers[li];
    L.ln1_w = P + at[kGpt2Ln1W], L.ln1_b = P + at[kGpt2Ln1B], L.ln2_w = P + at[kGpt2Ln2W], L.ln2_b = P + at[kGpt2Ln2B];
    WeightView* views[kGpt2Projections] = {&L.attn, &L.proj, &L.fc, &L.fc_proj};
    const float** biases[kGpt2Projections] = {&L.attn_b, &L.proj_b, &L.fc_b, &L.fc_proj_b};
    for (int p = 0; p < kGpt2Projections; ++p) {
      *views[p] = t->full_view(at[p], views[p]->rows, views[p]->cols);
      *biases[p] = P + at[kGpt2Bias + p];
    }
  }
  return r;
}

Gpt2Cache::Gpt2Cache(const Gpt2Config& c, int64_t cap, const ExecContext& x)
    : capacity(cap), layers(c.layers), dim(c.dim), k(x, c.layers * cap * c.dim, true), v(x, c.layers * cap * c.dim, true) {}

void Gpt2Cache::grow(int64_t cap, const ExecContext& x) {
  for (Buffer* b : {&k, &v}) {
    Buffer bigger(x, layers * cap * dim, true);
    for (int64_t li = 0; li < layers && length; ++li)
      x.backend->copy(bigger.data() + li * cap * dim, b->data() + li * capacity * dim, static_cast<size_t>(length * dim) * sizeof(float));
    *b = std::move(bigger);
  }
  capacity = cap;
}

void gpt2_decode(const Gpt2Config& c, const Gpt2Weights& w, const Trainable* t, const int32_t* tokens, int64_t n,
                 Gpt2Cache& cache, float* logits, const ExecContext& ex) {
  const ForwardContext forward(t, ex);
  const StepContext& ctx = forward.ctx;
  const OpTable& op = ctx.op;
  const ExecContext& x = ctx.x;
  const int64_t d = c.dim, hd = d / c.heads, offset = cache.length;
  Buf h = ctx.buffer(n * d), hn = ctx.buffer(n * d), qkv = ctx.buffer(n * 3 * d), q = ctx.buffer(n * d);
  Buf att = ctx.buffer(n * d), f = ctx.buffer(n * c.ffn), g = ctx.buffer(n * c.ffn), saved;
  const std::vector<int32_t> positions = positions_from(offset, n);
  op.embedding_forward(x, w.wte, tokens, n, h.data(), false);
  op.embedding_forward(x, gpt2_positions(w, c), positions.data(), n, h.data(), true);
  auto linear = [&](size_t li, int p) {
    Linear l;
    l.w = &gpt2_projection(w.layers[li], p), l.in_out = true, l.bias = gpt2_bias(w.layers[li], p);
    l.lora = t ? t->slot(li, p) : nullptr;
    return l;
  };
  for (size_t li = 0; li < w.layers.size(); ++li) {
    const Gpt2Layer& L = w.layers[li];
    float* kc = cache.k.data() + static_cast<int64_t>(li) * cache.capacity * d;
    float* vc = cache.v.data() + static_cast<int64_t>(li) * cache.capacity * d;
    op.layernorm_forward(x, h.data(), L.ln1_w, L.ln1_b, n, d, c.eps, hn.data());
    project(ctx, linear(li, kGpt2Attn), hn.data(), n, qkv.data(), saved);
    // q for this call; k and v after the cached ones.
    op.copy_block(x, q.data(), d, qkv.data(), 3 * d, n, d);
    op.copy_block(x, kc + offset * d, d, qkv.data() + d, 3 * d, n, d);
    op.copy_block(x, vc + offset * d, d, qkv.data() + 2 * d, 3 * d, n, d);
    op.attention_forward_cached(x, q.data(), kc, vc, n, offset, c.heads, c.heads, hd, att.data(), false, {});
    project(ctx, linear(li, kGpt2Proj), att.data(), n, h.data(), saved, true);
    op.layernorm_forward(x, h.data(), L.ln2_w, L.ln2_b, n, d, c.eps, hn.data());
    project(ctx, linear(li, kGpt2Fc), hn.data(), n, f.data(), saved);
    op.gelu_forward(x, f.data(), n * c.ffn, g.data());
    project(ctx, linear(li, kGpt2FcProj), g.data(), n, h.data(), saved, true);
  }
  cache.length += n;
  op.layernorm_forward(x, h.data() + (n - 1) * d, w.lnf_w, w.lnf_b, 1, d, c.eps, hn.data());
  Buf out = ctx.buffer(c.vocab);
  GemmArgs gl;  // tied head: logits = h·wteᵀ
  gl.m = 1, gl.n = c.vocab, gl.k = d;
  gl.a.data = hn.data(), gl.a.ld = d;
  gl.b.weights = &w.wte, gl.b.trans = true;
  gl.c = out.data(), gl.ldc = c.vocab;
  op.gemm(x, gl);
  x.backend->copy_to_host(logits, out.data(), static_cast<size_t>(c.vocab) * sizeof(float));
}

}  // namespace tk
