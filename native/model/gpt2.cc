#include "gpt2.h"

#include "../ops/attention.h"
#include "../ops/gelu.h"
#include "../ops/gemm.h"
#include "../ops/layernorm.h"
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

Gpt2Cache::Gpt2Cache(const Gpt2Config& c, int64_t cap)
    : capacity(cap), k(static_cast<size_t>(c.layers * cap * c.dim), 0.0f), v(k.size(), 0.0f) {}

void gpt2_decode(const Gpt2Config& c, const Gpt2Weights& w, const Trainable* t, const int32_t* tokens, int64_t n,
                 Gpt2Cache& cache, float* logits, Isa isa, ThreadPool& pool) {
  Trainable none;
  StepOptions so;
  so.backward = false;
  const StepContext ctx(t ? const_cast<Trainable&>(*t) : none, so, isa, pool);  // read-only without a backward
  const int64_t d = c.dim, hd = d / c.heads, offset = cache.length;
  Buf x(n * d), h(n * d), qkv(n * 3 * d), q(n * d), att(n * d), f(n * c.ffn), g(n * c.ffn), saved;
  for (int64_t i = 0; i < n; ++i) {
    w.wte.decode(tokens[i], 0, d, x.data() + i * d);
    for (int64_t j = 0; j < d; ++j) x[i * d + j] += w.wpe[(offset + i) * d + j];
  }
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
    layernorm_forward(x.data(), L.ln1_w, L.ln1_b, n, d, c.eps, h.data(), pool);
    project(ctx, linear(li, kGpt2Attn), h.data(), n, qkv.data(), saved);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < d; ++j) {
        q[i * d + j] = qkv[i * 3 * d + j];
        kc[(offset + i) * d + j] = qkv[i * 3 * d + d + j];
        vc[(offset + i) * d + j] = qkv[i * 3 * d + 2 * d + j];
      }
    attention_causal_forward(q.data(), kc, vc, n, offset, c.heads, c.heads, hd, att.data(), isa, pool);
    project(ctx, linear(li, kGpt2Proj), att.data(), n, x.data(), saved, true);
    layernorm_forward(x.data(), L.ln2_w, L.ln2_b, n, d, c.eps, h.data(), pool);
    project(ctx, linear(li, kGpt2Fc), h.data(), n, f.data(), saved);
    gelu_forward(f.data(), n * c.ffn, g.data(), pool, isa);
    project(ctx, linear(li, kGpt2FcProj), g.data(), n, x.data(), saved, true);
  }
  cache.length += n;
  layernorm_forward(x.data() + (n - 1) * d, w.lnf_w, w.lnf_b, 1, d, c.eps, h.data(), pool);
  GemmArgs gl;  // tied head: logits = h·wteᵀ
  gl.m = 1, gl.n = c.vocab, gl.k = d;
  gl.a.data = h.data(), gl.a.ld = d;
  gl.b.weights = &w.wte, gl.b.trans = true;
  gl.c = logits, gl.ldc = c.vocab;
  gemm(gl, isa, pool);
}

}  // namespace tk
