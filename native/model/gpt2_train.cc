#include "gpt2_train.h"

#include <array>


namespace tk {
namespace {

struct LayerSaved {
  Buf x_in, h1, q, k, v, att, x_mid, h2, f, g;
  Buf lse;  // the attention's row statistics for its backward
  std::array<Buf, kGpt2Projections> t;
};

// q, k and v [n, d] out of c_attn's [n, 3d] rows, and back.
void split_qkv(const StepContext& ctx, const float* qkv, int64_t n, int64_t d, float* q, float* k, float* v) {
  float* parts[3] = {q, k, v};
  for (int i = 0; i < 3; ++i) ctx.op.copy_block(ctx.x, parts[i], d, qkv + i * d, 3 * d, n, d);
}
void join_qkv(const StepContext& ctx, const float* q, const float* k, const float* v, int64_t n, int64_t d, float* qkv) {
  const float* parts[3] = {q, k, v};
  for (int i = 0; i < 3; ++i) ctx.op.copy_block(ctx.x, qkv + i * d, 3 * d, parts[i], d, n, d);
}

}  // namespace

StepResult gpt2_step(const Gpt2Config& c, const Gpt2Weights& w, Trainable& tr, const int32_t* tokens, const int32_t* labels,
                     int64_t batch, int64_t seq, const StepOptions& so, const ExecContext& ex) {
  const StepContext ctx(tr, so, ex);  // declared first: ends the step after every buffer below is freed
  const OpTable& op = ctx.op;
  const ExecContext& x = ctx.x;
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
  Buf h = ctx.buffer(n * d);  // the residual stream: token rows + position rows
  op.embedding_forward(x, w.wte, tokens, n, h.data(), false);
  op.embedding_forward(x, gpt2_positions(w, c), rows.positions.data(), n, h.data(), true);
  std::vector<LayerSaved> saved(w.layers.size());
  auto layer_forward = [&](size_t li, Buf& h) {
    const Gpt2Layer& L = w.layers[li];
    LayerSaved& s = saved[li];
    s.x_in = copy_of(x, h);
    s.h1 = ctx.buffer(n * d), s.q = ctx.buffer(n * d), s.k = ctx.buffer(n * d), s.v = ctx.buffer(n * d);
    s.att = ctx.buffer(n * d), s.lse = ctx.buffer(n * c.heads);
    op.layernorm_forward(x, h.data(), L.ln1_w, L.ln1_b, n, d, c.eps, s.h1.data());
    Buf qkv = ctx.buffer(n * 3 * d);
    project(ctx, linear(li, kGpt2Attn), s.h1.data(), n, qkv.data(), s.t[kGpt2Attn]);
    split_qkv(ctx, qkv.data(), n, d, s.q.data(), s.k.data(), s.v.data());
    op.attention_forward(x, s.q.data(), s.k.data(), s.v.data(), rows.segments, c.heads, c.heads, hd, s.att.data(), s.lse.data(), so.bf16, {});
    project(ctx, linear(li, kGpt2Proj), s.att.data(), n, h.data(), s.t[kGpt2Proj], true);  // residual
    s.x_mid = copy_of(x, h);
    s.h2 = ctx.buffer(n * d), s.f = ctx.buffer(n * c.ffn), s.g = ctx.buffer(n * c.ffn);
    op.layernorm_forward(x, h.data(), L.ln2_w, L.ln2_b, n, d, c.eps, s.h2.data());
    project(ctx, linear(li, kGpt2Fc), s.h2.data(), n, s.f.data(), s.t[kGpt2Fc]);
    op.gelu_forward(x, s.f.data(), n * c.ffn, s.g.data());
    project(ctx, linear(li, kGpt2FcProj), s.g.data(), n, h.data(), s.t[kGpt2FcProj], true);  // residual
  };
  auto drop = [](LayerSaved& s) {
    for (Buf* b : {&s.h1, &s.q, &s.k, &s.v, &s.att, &s.lse, &s.x_mid, &s.h2, &s.f, &s.g}) b->reset();
    for (Buf& t : s.t) t.reset();
  };
  for (size_t li = 0; li < w.layers.size(); ++li) {
    layer_forward(li, h);
    if (so.checkpoint || !ctx.through) drop(saved[li]);
  }
  Buf hf = ctx.buffer(n * d), dh = ctx.buffer(n * d), dx = ctx.buffer(n * d);
  op.layernorm_forward(x, h.data(), w.lnf_w, w.lnf_b, n, d, c.eps, hf.data());
  const CrossEntropyResult ce = decoder_top(ctx, w.wte, F.on ? tr.full_grad(F.model[kWte]) : nullptr, hf.data(), d, c.vocab,
                                            rows, labels, so.backward ? dh.data() : nullptr);  // the head is tied to wte
  StepResult result{ce.loss, ce.count};
  if (!ctx.through || ce.count == 0) return result;
  op.layernorm_backward(x, h.data(), w.lnf_w, dh.data(), n, d, c.eps, dx.data(), F.on ? tr.full_grad(F.model[kLnfW]) : nullptr,
                        F.on ? tr.full_grad(F.model[kLnfB]) : nullptr);
  ctx.group_done("output");
  for (size_t li = w.layers.size(); li-- > 0;) {
    const Gpt2Layer& L = w.layers[li];
    LayerSaved& s = saved[li];
    if (so.checkpoint) {
      Buf replay = copy_of(x, s.x_in);
      layer_forward(li, replay);
    }
    // MLP: x_out = x_mid + fc_proj(gelu(fc(LN2(x_mid)))).
    Buf dg = ctx.buffer(n * c.ffn), df = ctx.buffer(n * c.ffn), dh2 = ctx.buffer(n * d), dmid = ctx.buffer(n * d);
    project_back(ctx, linear(li, kGpt2FcProj), s.g.data(), dx.data(), n, s.t[kGpt2FcProj], dg.data(), false);
    op.gelu_backward(x, s.f.data(), dg.data(), n * c.ffn, df.data());
    project_back(ctx, linear(li, kGpt2Fc), s.h2.data(), df.data(), n, s.t[kGpt2Fc], dh2.data(), false);
    op.layernorm_backward(x, s.x_mid.data(), L.ln2_w, dh2.data(), n, d, c.eps, dmid.data(), full_grad(li, kGpt2Ln2W),
                          full_grad(li, kGpt2Ln2B));
    op.add(x, dmid.data(), dx.data(), n * d);
    // Attention: x_mid = x_in + proj(attn(split(c_attn(LN1(x_in))))).
    Buf datt = ctx.buffer(n * d), dq = ctx.buffer(n * d), dk = ctx.buffer(n * d), dv = ctx.buffer(n * d);
    Buf dqkv = ctx.buffer(n * 3 * d), dh1 = ctx.buffer(n * d);
    project_back(ctx, linear(li, kGpt2Proj), s.att.data(), dmid.data(), n, s.t[kGpt2Proj], datt.data(), false);
    op.attention_backward(x, s.q.data(), s.k.data(), s.v.data(), s.att.data(), s.lse.data(), datt.data(), rows.segments,
                          c.heads, c.heads, hd, dq.data(), dk.data(), dv.data(), so.bf16, {});
    join_qkv(ctx, dq.data(), dk.data(), dv.data(), n, d, dqkv.data());
    project_back(ctx, linear(li, kGpt2Attn), s.h1.data(), dqkv.data(), n, s.t[kGpt2Attn], dh1.data(), false);
    op.layernorm_backward(x, s.x_in.data(), L.ln1_w, dh1.data(), n, d, c.eps, dx.data(), full_grad(li, kGpt2Ln1W),
                          full_grad(li, kGpt2Ln1B));
    op.add(x, dx.data(), dmid.data(), n * d);
    drop(s);
    ctx.group_done("layer." + std::to_string(li));
  }
  if (F.on) {  // embeddings: token and position rows
    op.embedding_backward(x, tr.full_grad(F.model[kWte]), tokens, dx.data(), n, d);
    op.embedding_backward(x, tr.full_grad(F.model[kWpe]), rows.positions.data(), dx.data(), n, d);
  }
  return result;
}

}  // namespace tk
