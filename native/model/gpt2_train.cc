#include "gpt2_train.h"

#include <algorithm>
#include <cmath>

#include "../ops/attention.h"
#include "../ops/cross_entropy.h"
#include "../ops/gelu.h"
#include "../ops/gemm.h"
#include "../ops/layernorm.h"

namespace tk {
namespace {

using Buf = std::vector<float>;

struct Ctx {
  Gpt2Lora& lora;
  Isa isa;
  ThreadPool& pool;
};

// C [m, n] (+)= A [m, k] · op(B); B dense f32 with leading dimension ldb, or a WeightView.
void mm(const Ctx& ctx, int64_t m, int64_t n, int64_t k, const float* a, bool a_trans, int64_t lda, const float* b,
        bool b_trans, int64_t ldb, float* c, float beta, const WeightView* bw = nullptr) {
  GemmArgs g;
  g.m = m, g.n = n, g.k = k;
  g.a.data = a, g.a.ld = lda, g.a.trans = a_trans;
  if (bw) g.b.weights = bw;
  else g.b.data = b, g.b.ld = ldb;
  g.b.trans = b_trans;
  g.c = c, g.ldc = n, g.beta = beta;
  gemm(g, ctx.isa, ctx.pool);
}

// y = x·W + bias (+ LoRA: scale·(x·Aᵀ)·Bᵀ, with t = x·Aᵀ kept for the backward); y (+)= when accumulate.
void project(const Ctx& ctx, const LoraSlot& s, const float* x, int64_t n, const WeightView& w, const float* bias, float* y,
             bool accumulate, Buf& t) {
  const int64_t in = w.rows, out = w.cols;
  mm(ctx, n, out, in, x, false, in, nullptr, false, 0, y, accumulate ? 1.0f : 0.0f, &w);
  add_bias(y, bias, n, out);
  if (!s.on) return;
  const float* A = ctx.lora.params.data() + s.a_offset;
  const float* B = ctx.lora.params.data() + s.b_offset;
  t.assign(static_cast<size_t>(n * s.r), 0.0f);
  mm(ctx, n, s.r, in, x, false, in, A, true, in, t.data(), 0.0f);
  Buf st(t);
  for (float& v : st) v *= s.scale;
  mm(ctx, n, out, s.r, st.data(), false, s.r, B, true, s.r, y, 1.0f);
}

// dx (+)= dy·Wᵀ (+ LoRA's), adapters' gradients added to lora.grads.
void project_back(const Ctx& ctx, const LoraSlot& s, const float* x, const float* dy, int64_t n, const WeightView& w,
                  const Buf& t, float* dx, bool accumulate, float* dw = nullptr, float* db = nullptr) {
  const int64_t in = w.rows, out = w.cols;
  if (dw) {  // full fine-tuning: dW [in, out] += xᵀ·dy, db += Σ_rows dy
    mm(ctx, in, out, n, x, true, in, dy, false, out, dw, 1.0f);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < out; ++j) db[j] += dy[r * out + j];
  }
  mm(ctx, n, in, out, dy, false, out, nullptr, true, 0, dx, accumulate ? 1.0f : 0.0f, &w);
  if (!s.on) return;
  const float* A = ctx.lora.params.data() + s.a_offset;
  const float* B = ctx.lora.params.data() + s.b_offset;
  float* dA = ctx.lora.grads.data() + s.a_offset;
  float* dB = ctx.lora.grads.data() + s.b_offset;
  Buf st(t);
  for (float& v : st) v *= s.scale;
  mm(ctx, out, s.r, n, dy, true, out, st.data(), false, s.r, dB, 1.0f);  // dB += dyᵀ·(s·t)
  Buf dt(static_cast<size_t>(n * s.r));
  mm(ctx, n, s.r, out, dy, false, out, B, false, s.r, dt.data(), 0.0f);  // dt = s·dy·B
  for (float& v : dt) v *= s.scale;
  mm(ctx, s.r, in, n, dt.data(), true, s.r, x, false, in, dA, 1.0f);  // dA += dtᵀ·x
  mm(ctx, n, in, s.r, dt.data(), false, s.r, A, false, in, dx, 1.0f);  // dx += dt·A
}

struct Saved {
  Buf x_in, h1, q, k, v, att, x_mid, h2, f, g;
  std::array<Buf, kGpt2Projections> t;
};

}  // namespace

StepResult gpt2_lora_step(const Gpt2Config& c, const Gpt2Weights& w, Gpt2Lora& lora, const int32_t* tokens,
                          const int32_t* labels, int64_t batch, int64_t seq, const StepOptions& o, Isa isa,
                          ThreadPool& pool, float* logits_out) {
  Ctx ctx{lora, isa, pool};
  const int64_t d = c.dim, n = batch * seq, hd = d / c.heads;
  std::vector<int32_t> positions(n);
  for (int64_t t = 0; t < n; ++t) positions[t] = o.positions ? o.positions[t] : static_cast<int32_t>(t % seq);
  AttentionSegments segments;
  for (int64_t t = 0; t < n; ++t) {
    if (t % seq == 0 || positions[t] == 0) segments.push_back({t, 0});
    ++segments.back().second;
  }
  Buf x(n * d);
  for (int64_t t = 0; t < n; ++t) {
    w.wte.decode(tokens[t], 0, d, x.data() + t * d);
    for (int64_t i = 0; i < d; ++i) x[t * d + i] += w.wpe[positions[t] * d + i];
  }
  std::vector<Saved> saved(w.layers.size());
  for (size_t li = 0; li < w.layers.size(); ++li) {
    const Gpt2Layer& L = w.layers[li];
    const auto& slots = lora.layers[li];
    Saved& s = saved[li];
    s.x_in = x;
    s.h1.resize(n * d), s.q.resize(n * d), s.k.resize(n * d), s.v.resize(n * d), s.att.resize(n * d);
    layernorm_forward(x.data(), L.ln1_w, L.ln1_b, n, d, c.eps, s.h1.data(), pool);
    Buf qkv(n * 3 * d);
    project(ctx, slots[kGpt2Attn], s.h1.data(), n, L.attn, L.attn_b, qkv.data(), false, s.t[kGpt2Attn]);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < d; ++i) {
        s.q[t * d + i] = qkv[t * 3 * d + i];
        s.k[t * d + i] = qkv[t * 3 * d + d + i];
        s.v[t * d + i] = qkv[t * 3 * d + 2 * d + i];
      }
    attention_causal_forward(s.q.data(), s.k.data(), s.v.data(), segments, c.heads, c.heads, hd, s.att.data(), isa, pool);
    project(ctx, slots[kGpt2Proj], s.att.data(), n, L.proj, L.proj_b, x.data(), true, s.t[kGpt2Proj]);  // residual
    s.x_mid = x;
    s.h2.resize(n * d), s.f.resize(n * c.ffn), s.g.resize(n * c.ffn);
    layernorm_forward(x.data(), L.ln2_w, L.ln2_b, n, d, c.eps, s.h2.data(), pool);
    project(ctx, slots[kGpt2Fc], s.h2.data(), n, L.fc, L.fc_b, s.f.data(), false, s.t[kGpt2Fc]);
    gelu_forward(s.f.data(), n * c.ffn, s.g.data(), pool);
    project(ctx, slots[kGpt2FcProj], s.g.data(), n, L.fc_proj, L.fc_proj_b, x.data(), true, s.t[kGpt2FcProj]);  // residual
  }
  Buf hf(n * d), logits(n * c.vocab);
  layernorm_forward(x.data(), w.lnf_w, w.lnf_b, n, d, c.eps, hf.data(), pool);
  mm(ctx, n, c.vocab, d, hf.data(), false, d, nullptr, true, 0, logits.data(), 0.0f, &w.wte);
  if (logits_out) std::copy(logits.begin(), logits.end(), logits_out);
  std::vector<int32_t> shifted(n, kIgnoreIndex);
  for (int64_t t = 0; t + 1 < n; ++t)
    if ((t + 1) % seq != 0 && positions[t + 1] != 0) shifted[t] = labels[t + 1];
  const CrossEntropyResult ce = cross_entropy(logits.data(), shifted.data(), n, c.vocab, o.backward, o.grad_scale, pool, isa);
  StepResult result;
  result.loss = ce.loss, result.count = ce.count;
  if (!o.backward || ce.count == 0) return result;
  const Gpt2Full& F = lora.full;
  auto G = [&](int64_t at) { return F.on ? lora.grads.data() + at : nullptr; };
  Buf dh(n * d), dx(n * d);
  mm(ctx, n, d, c.vocab, logits.data(), false, c.vocab, nullptr, false, 0, dh.data(), 0.0f, &w.wte);
  if (F.on) mm(ctx, c.vocab, d, n, logits.data(), true, c.vocab, hf.data(), false, d, G(F.wte), 1.0f);  // tied head
  layernorm_backward(x.data(), w.lnf_w, dh.data(), n, d, c.eps, dx.data(), G(F.lnf_w), G(F.lnf_b), pool);
  for (size_t li = w.layers.size(); li-- > 0;) {
    const Gpt2Layer& L = w.layers[li];
    const auto& slots = lora.layers[li];
    Saved& s = saved[li];
    // MLP: x_out = x_mid + fc_proj(gelu(fc(LN2(x_mid)))).
    Buf dg(n * c.ffn), df(n * c.ffn), dh2(n * d), dmid(n * d);
    const Gpt2Full::Layer* FL = F.on ? &F.layers[li] : nullptr;
    auto dW = [&](int p) { return FL ? G(FL->w[p]) : nullptr; };
    auto dB = [&](int p) { return FL ? G(FL->b[p]) : nullptr; };
    project_back(ctx, slots[kGpt2FcProj], s.g.data(), dx.data(), n, L.fc_proj, s.t[kGpt2FcProj], dg.data(), false,
                 dW(kGpt2FcProj), dB(kGpt2FcProj));
    gelu_backward(s.f.data(), dg.data(), n * c.ffn, df.data(), pool);
    project_back(ctx, slots[kGpt2Fc], s.h2.data(), df.data(), n, L.fc, s.t[kGpt2Fc], dh2.data(), false, dW(kGpt2Fc), dB(kGpt2Fc));
    layernorm_backward(s.x_mid.data(), L.ln2_w, dh2.data(), n, d, c.eps, dmid.data(), FL ? G(FL->ln2_w) : nullptr,
                       FL ? G(FL->ln2_b) : nullptr, pool);
    for (int64_t i = 0; i < n * d; ++i) dmid[i] += dx[i];
    // Attention: x_mid = x_in + proj(attn(split(c_attn(LN1(x_in))))).
    Buf datt(n * d), dq(n * d), dk(n * d), dv(n * d), dqkv(n * 3 * d), dh1(n * d);
    project_back(ctx, slots[kGpt2Proj], s.att.data(), dmid.data(), n, L.proj, s.t[kGpt2Proj], datt.data(), false,
                 dW(kGpt2Proj), dB(kGpt2Proj));
    attention_causal_backward(s.q.data(), s.k.data(), s.v.data(), datt.data(), segments, c.heads, c.heads, hd, dq.data(),
                              dk.data(), dv.data(), isa, pool);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < d; ++i) {
        dqkv[t * 3 * d + i] = dq[t * d + i];
        dqkv[t * 3 * d + d + i] = dk[t * d + i];
        dqkv[t * 3 * d + 2 * d + i] = dv[t * d + i];
      }
    project_back(ctx, slots[kGpt2Attn], s.h1.data(), dqkv.data(), n, L.attn, s.t[kGpt2Attn], dh1.data(), false,
                 dW(kGpt2Attn), dB(kGpt2Attn));
    layernorm_backward(s.x_in.data(), L.ln1_w, dh1.data(), n, d, c.eps, dx.data(), FL ? G(FL->ln1_w) : nullptr,
                       FL ? G(FL->ln1_b) : nullptr, pool);
    for (int64_t i = 0; i < n * d; ++i) dx[i] += dmid[i];
    saved[li] = Saved();
  }
  if (F.on) {  // embeddings: token and position rows
    float* dwte = G(F.wte);
    float* dwpe = G(F.wpe);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < d; ++i) {
        dwte[static_cast<int64_t>(tokens[t]) * d + i] += dx[t * d + i];
        dwpe[static_cast<int64_t>(positions[t]) * d + i] += dx[t * d + i];
      }
  }
  return result;
}

void gpt2_decode(const Gpt2Config& c, const Gpt2Weights& w, Gpt2Lora* lora, const int32_t* tokens, int64_t n, int64_t offset,
                 int64_t capacity, float* k_cache, float* v_cache, float* logits, Isa isa, ThreadPool& pool) {
  Gpt2Lora none;
  if (!lora) {
    none.layers.resize(w.layers.size());
    lora = &none;
  }
  Ctx ctx{*lora, isa, pool};
  const int64_t d = c.dim, hd = d / c.heads;
  Buf x(n * d), h(n * d), qkv(n * 3 * d), q(n * d), att(n * d), f(n * c.ffn), g(n * c.ffn), t;
  for (int64_t i = 0; i < n; ++i) {
    w.wte.decode(tokens[i], 0, d, x.data() + i * d);
    for (int64_t j = 0; j < d; ++j) x[i * d + j] += w.wpe[(offset + i) * d + j];
  }
  for (size_t li = 0; li < w.layers.size(); ++li) {
    const Gpt2Layer& L = w.layers[li];
    const auto& slots = lora->layers[li];
    float* kc = k_cache + static_cast<int64_t>(li) * capacity * d;
    float* vc = v_cache + static_cast<int64_t>(li) * capacity * d;
    layernorm_forward(x.data(), L.ln1_w, L.ln1_b, n, d, c.eps, h.data(), pool);
    project(ctx, slots[kGpt2Attn], h.data(), n, L.attn, L.attn_b, qkv.data(), false, t);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < d; ++j) {
        q[i * d + j] = qkv[i * 3 * d + j];
        kc[(offset + i) * d + j] = qkv[i * 3 * d + d + j];
        vc[(offset + i) * d + j] = qkv[i * 3 * d + 2 * d + j];
      }
    attention_causal_forward(q.data(), kc, vc, n, offset, c.heads, c.heads, hd, att.data(), isa, pool);
    project(ctx, slots[kGpt2Proj], att.data(), n, L.proj, L.proj_b, x.data(), true, t);
    layernorm_forward(x.data(), L.ln2_w, L.ln2_b, n, d, c.eps, h.data(), pool);
    project(ctx, slots[kGpt2Fc], h.data(), n, L.fc, L.fc_b, f.data(), false, t);
    gelu_forward(f.data(), n * c.ffn, g.data(), pool);
    project(ctx, slots[kGpt2FcProj], g.data(), n, L.fc_proj, L.fc_proj_b, x.data(), true, t);
  }
  layernorm_forward(x.data() + (n - 1) * d, w.lnf_w, w.lnf_b, 1, d, c.eps, h.data(), pool);
  mm(ctx, 1, c.vocab, d, h.data(), false, d, nullptr, true, 0, logits, 0.0f, &w.wte);
}

}  // namespace tk
