#include "gpt2_train.h"

#include <array>

#include "../ops/attention.h"
#include "../ops/gelu.h"
#include "../ops/layernorm.h"

namespace tk {
namespace {

struct LayerSaved {
  Buf x_in, h1, q, k, v, att, x_mid, h2, f, g;
  std::array<Buf, kGpt2Projections> t;
};

// q, k and v [n, d] out of c_attn's [n, 3d] rows, and back.
void split_qkv(const float* qkv, int64_t n, int64_t d, float* q, float* k, float* v) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < d; ++i) {
      q[t * d + i] = qkv[t * 3 * d + i];
      k[t * d + i] = qkv[t * 3 * d + d + i];
      v[t * d + i] = qkv[t * 3 * d + 2 * d + i];
    }
}
void join_qkv(const float* q, const float* k, const float* v, int64_t n, int64_t d, float* qkv) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < d; ++i) {
      qkv[t * 3 * d + i] = q[t * d + i];
      qkv[t * 3 * d + d + i] = k[t * d + i];
      qkv[t * 3 * d + 2 * d + i] = v[t * d + i];
    }
}

}  // namespace

StepResult gpt2_step(const Gpt2Config& c, const Gpt2Weights& w, Trainable& tr, const int32_t* tokens, const int32_t* labels,
                     int64_t batch, int64_t seq, const StepOptions& so, Isa isa, ThreadPool& pool) {
  const StepScope scope;  // ends the step after every buffer below is freed
  const StepContext ctx(tr, so, isa, pool);
  const int64_t d = c.dim, n = batch * seq, hd = d / c.heads;
  const StepRows rows = step_rows(so.positions, batch, seq);
  const FullLayout& F = tr.full;
  auto linear = [&](size_t li, int p) {
    Linear l;
    l.w = &gpt2_projection(w.layers[li], p), l.in_out = true, l.bias = gpt2_bias(w.layers[li], p);
    l.lora = tr.slot(li, p);
    if (F.on) l.dw = tr.full_grad(F.layers[li][p]), l.db = tr.full_grad(F.layers[li][kGpt2Bias + p]);
    return l;
  };
  auto full_grad = [&](size_t li, int weight) { return F.on ? tr.full_grad(F.layers[li][weight]) : nullptr; };
  Buf x(n * d);
  for (int64_t t = 0; t < n; ++t) {
    w.wte.decode(tokens[t], 0, d, x.data() + t * d);
    for (int64_t i = 0; i < d; ++i) x[t * d + i] += w.wpe[rows.positions[t] * d + i];
  }
  std::vector<LayerSaved> saved(w.layers.size());
  auto layer_forward = [&](size_t li, Buf& x) {
    const Gpt2Layer& L = w.layers[li];
    LayerSaved& s = saved[li];
    copy_into(s.x_in, x, pool);
    s.h1.resize(n * d), s.q.resize(n * d), s.k.resize(n * d), s.v.resize(n * d), s.att.resize(n * d);
    layernorm_forward(x.data(), L.ln1_w, L.ln1_b, n, d, c.eps, s.h1.data(), pool);
    Buf qkv(n * 3 * d);
    project(ctx, linear(li, kGpt2Attn), s.h1.data(), n, qkv.data(), s.t[kGpt2Attn]);
    split_qkv(qkv.data(), n, d, s.q.data(), s.k.data(), s.v.data());
    attention_causal_forward(s.q.data(), s.k.data(), s.v.data(), rows.segments, c.heads, c.heads, hd, s.att.data(), isa, pool,
                             so.bf16);
    project(ctx, linear(li, kGpt2Proj), s.att.data(), n, x.data(), s.t[kGpt2Proj], true);  // residual
    copy_into(s.x_mid, x, pool);
    s.h2.resize(n * d), s.f.resize(n * c.ffn), s.g.resize(n * c.ffn);
    layernorm_forward(x.data(), L.ln2_w, L.ln2_b, n, d, c.eps, s.h2.data(), pool);
    project(ctx, linear(li, kGpt2Fc), s.h2.data(), n, s.f.data(), s.t[kGpt2Fc]);
    gelu_forward(s.f.data(), n * c.ffn, s.g.data(), pool, isa);
    project(ctx, linear(li, kGpt2FcProj), s.g.data(), n, x.data(), s.t[kGpt2FcProj], true);  // residual
  };
  auto drop = [](LayerSaved& s) {
    for (Buf* b : {&s.h1, &s.q, &s.k, &s.v, &s.att, &s.x_mid, &s.h2, &s.f, &s.g}) Buf().swap(*b);
    for (Buf& t : s.t) Buf().swap(t);
  };
  for (size_t li = 0; li < w.layers.size(); ++li) {
    layer_forward(li, x);
    if (so.checkpoint || !ctx.through) drop(saved[li]);
  }
  Buf hf(n * d), dh(n * d), dx(n * d);
  layernorm_forward(x.data(), w.lnf_w, w.lnf_b, n, d, c.eps, hf.data(), pool);
  const CrossEntropyResult ce = decoder_top(ctx, w.wte, F.on ? tr.full_grad(F.model[kWte]) : nullptr, hf.data(), d, c.vocab,
                                            rows, labels, so.backward ? dh.data() : nullptr);  // the head is tied to wte
  StepResult result{ce.loss, ce.count};
  if (!ctx.through || ce.count == 0) return result;
  layernorm_backward(x.data(), w.lnf_w, dh.data(), n, d, c.eps, dx.data(), F.on ? tr.full_grad(F.model[kLnfW]) : nullptr,
                     F.on ? tr.full_grad(F.model[kLnfB]) : nullptr, pool);
  for (size_t li = w.layers.size(); li-- > 0;) {
    const Gpt2Layer& L = w.layers[li];
    LayerSaved& s = saved[li];
    if (so.checkpoint) {
      Buf replay = s.x_in;
      layer_forward(li, replay);
    }
    // MLP: x_out = x_mid + fc_proj(gelu(fc(LN2(x_mid)))).
    Buf dg(n * c.ffn), df(n * c.ffn), dh2(n * d), dmid(n * d);
    project_back(ctx, linear(li, kGpt2FcProj), s.g.data(), dx.data(), n, s.t[kGpt2FcProj], dg.data(), false);
    gelu_backward(s.f.data(), dg.data(), n * c.ffn, df.data(), pool, isa);
    project_back(ctx, linear(li, kGpt2Fc), s.h2.data(), df.data(), n, s.t[kGpt2Fc], dh2.data(), false);
    layernorm_backward(s.x_mid.data(), L.ln2_w, dh2.data(), n, d, c.eps, dmid.data(), full_grad(li, kGpt2Ln2W),
                       full_grad(li, kGpt2Ln2B), pool);
    add_into(dmid.data(), dx.data(), n * d, pool);
    // Attention: x_mid = x_in + proj(attn(split(c_attn(LN1(x_in))))).
    Buf datt(n * d), dq(n * d), dk(n * d), dv(n * d), dqkv(n * 3 * d), dh1(n * d);
    project_back(ctx, linear(li, kGpt2Proj), s.att.data(), dmid.data(), n, s.t[kGpt2Proj], datt.data(), false);
    attention_causal_backward(s.q.data(), s.k.data(), s.v.data(), datt.data(), rows.segments, c.heads, c.heads, hd, dq.data(),
                              dk.data(), dv.data(), isa, pool, so.bf16);
    join_qkv(dq.data(), dk.data(), dv.data(), n, d, dqkv.data());
    project_back(ctx, linear(li, kGpt2Attn), s.h1.data(), dqkv.data(), n, s.t[kGpt2Attn], dh1.data(), false);
    layernorm_backward(s.x_in.data(), L.ln1_w, dh1.data(), n, d, c.eps, dx.data(), full_grad(li, kGpt2Ln1W),
                       full_grad(li, kGpt2Ln1B), pool);
    add_into(dx.data(), dmid.data(), n * d, pool);
    drop(s);
  }
  if (F.on) {  // embeddings: token and position rows
    scatter_rows(tr.full_grad(F.model[kWte]), tokens, dx.data(), n, d, pool);
    scatter_rows(tr.full_grad(F.model[kWpe]), rows.positions.data(), dx.data(), n, d, pool);
  }
  return result;
}

}  // namespace tk
