#include "llama_train.h"


namespace tk {
namespace {

struct LayerSaved {
  Buf x_in, h1, q, k, v, att, x_mid, h2, g, u, a;
  Buf lse;           // the attention's row statistics for its backward
  Buf q_raw, k_raw;  // Qwen3, Gemma 3: q and k before their per-head RMSNorm
  Buf ao, mo;        // Gemma: the attention's and the MLP's outputs before their post-norms
  std::array<Buf, kProjections> t;
};

const float* bias_of(const LlamaLayer& L, int p) {
  return p == kQ ? L.q_bias : p == kK ? L.k_bias : p == kV ? L.v_bias : nullptr;  // Qwen2's, frozen
}

}  // namespace

// The whole batch at once: every projection runs on [batch · n] rows (so each frozen weight is
// decoded once per direction), attention runs per sequence.
StepResult llama_step(const LlamaConfig& c, const LlamaWeights& w, Trainable& tr, const int32_t* tokens, const int32_t* labels,
                      int64_t batch, int64_t seq, const StepOptions& so, const ExecContext& ex) {
  const StepContext ctx(tr, so, ex);  // declared first: ends the step after every buffer below is freed
  const OpTable& op = ctx.op;
  const ExecContext& x = ctx.x;
  const int64_t qdim = c.heads * c.head_dim, kvdim = c.kv_heads * c.head_dim;
  const int64_t n = batch * seq;  // rows
  const StepRows rows = step_rows(so.positions, batch, seq);
  const std::array<RopeTable, 2> ropes = llama_rope_tables(c, rows.positions.data(), n);
  const float qf = query_factor(c);
  auto linear = [&](size_t li, int p) {
    Linear l;
    l.w = &projection(w.layers[li], p);
    l.bias = bias_of(w.layers[li], p);
    l.lora = tr.slot(li, p);
    if (tr.full.on) l.dw = tr.full_grad(tr.full.layers[li][p]);
    return l;
  };
  Buf h = ctx.buffer(n * c.dim);  // the residual stream
  op.embedding_forward(x, w.embed, tokens, n, h.data(), false);
  if (c.embed_scale > 0) op.scale(x, h.data(), c.embed_scale, n * c.dim);
  std::vector<LayerSaved> saved(w.layers.size());
  // A branch's output joins the residual h: straight in, or (Gemma) through its post-norm, the
  // product's output kept in `out` for the backward.
  auto join = [&](const Linear& l, const float* in, const float* post_norm, Buf& out, Buf& t, Buf& h) {
    if (!post_norm) return project(ctx, l, in, n, h.data(), t, true);  // h += in·Wᵀ
    out = ctx.buffer(n * c.dim);
    project(ctx, l, in, n, out.data(), t);
    Buf normed = ctx.buffer(n * c.dim);
    op.rmsnorm_forward(x, out.data(), post_norm, n, c.dim, c.eps, normed.data());
    op.add(x, h.data(), normed.data(), n * c.dim);
  };
  // One layer forward from x (updated in place), filling everything its backward needs.
  auto layer_forward = [&](size_t li, Buf& h) {
    const LlamaLayer& L = w.layers[li];
    LayerSaved& s = saved[li];
    s.x_in = copy_of(x, h);
    s.h1 = ctx.buffer(n * c.dim), s.q = ctx.buffer(n * qdim), s.k = ctx.buffer(n * kvdim), s.v = ctx.buffer(n * kvdim);
    s.att = ctx.buffer(n * qdim), s.lse = ctx.buffer(n * c.heads);
    op.rmsnorm_forward(x, h.data(), L.attn_norm, n, c.dim, c.eps, s.h1.data());
    // q, k and v read the same input: with the weights' panels kept, pack it once for all three.
    const auto h1p = shared_input(ctx, s.h1.data(), n, c.dim);
    project(ctx, linear(li, kQ), s.h1.data(), n, s.q.data(), s.t[kQ], false, h1p.get());
    project(ctx, linear(li, kK), s.h1.data(), n, s.k.data(), s.t[kK], false, h1p.get());
    project(ctx, linear(li, kV), s.h1.data(), n, s.v.data(), s.t[kV], false, h1p.get());
    if (L.q_norm) {  // Qwen3, Gemma 3: each head's q and k normalized before RoPE (the inputs kept for the backward)
      s.q_raw = copy_of(x, s.q), s.k_raw = copy_of(x, s.k);
      op.rmsnorm_forward(x, s.q_raw.data(), L.q_norm, n * c.heads, c.head_dim, c.eps, s.q.data());
      op.rmsnorm_forward(x, s.k_raw.data(), L.k_norm, n * c.kv_heads, c.head_dim, c.eps, s.k.data());
    }
    const RopeTable& rope = ropes[local_rope(c, li) ? 1 : 0];
    op.rope_forward(x, s.q.data(), c.heads, rope);
    op.rope_forward(x, s.k.data(), c.kv_heads, rope);
    if (qf != 1.0f) op.scale(x, s.q.data(), qf, n * qdim);  // saved scaled: the attention backward reads it
    op.attention_forward(x, s.q.data(), s.k.data(), s.v.data(), rows.segments, c.heads, c.kv_heads, c.head_dim, s.att.data(),
                         s.lse.data(), so.bf16, attention_scores(c, li));
    join(linear(li, kO), s.att.data(), L.post_attn_norm, s.ao, s.t[kO], h);  // h += attention
    s.x_mid = copy_of(x, h);
    s.h2 = ctx.buffer(n * c.dim), s.g = ctx.buffer(n * c.ffn), s.u = ctx.buffer(n * c.ffn), s.a = ctx.buffer(n * c.ffn);
    op.rmsnorm_forward(x, h.data(), L.ffn_norm, n, c.dim, c.eps, s.h2.data());
    const auto h2p = shared_input(ctx, s.h2.data(), n, c.dim);
    project(ctx, linear(li, kGate), s.h2.data(), n, s.g.data(), s.t[kGate], false, h2p.get());
    project(ctx, linear(li, kUp), s.h2.data(), n, s.u.data(), s.t[kUp], false, h2p.get());
    (c.gelu_gate ? op.geglu_forward : op.swiglu_forward)(x, s.g.data(), s.u.data(), n * c.ffn, s.a.data());
    join(linear(li, kDown), s.a.data(), L.post_ffn_norm, s.mo, s.t[kDown], h);  // h += MLP
  };
  // With checkpointing a layer keeps only its input; the backward recomputes the rest.
  auto drop = [](LayerSaved& s) {
    for (Buf* b : {&s.h1, &s.q, &s.k, &s.v, &s.att, &s.lse, &s.x_mid, &s.h2, &s.g, &s.u, &s.a, &s.q_raw, &s.k_raw, &s.ao, &s.mo}) b->reset();
    for (Buf& t : s.t) t.reset();
  };
  for (size_t li = 0; li < w.layers.size(); ++li) {
    layer_forward(li, h);
    if (so.checkpoint || !ctx.through) drop(saved[li]);
  }
  Buf hf = ctx.buffer(n * c.dim), dh = ctx.buffer(n * c.dim), dx = ctx.buffer(n * c.dim);
  op.rmsnorm_forward(x, h.data(), w.out_norm, n, c.dim, c.eps, hf.data());
  const FullLayout& F = tr.full;
  float* head_grad = F.on ? tr.full_grad(F.model[kLmHead] >= 0 ? F.model[kLmHead] : F.model[kEmbed]) : nullptr;  // tied: the embedding
  const CrossEntropyResult ce =
      decoder_top(ctx, w.lm_head, head_grad, hf.data(), c.dim, c.vocab, rows, labels, so.backward ? dh.data() : nullptr,
                  c.logit_softcap);
  StepResult result{ce.loss, ce.count};
  if (!ctx.through || ce.count == 0) return result;
  op.rmsnorm_backward(x, h.data(), w.out_norm, dh.data(), n, c.dim, c.eps, dx.data(),
                      F.on ? tr.full_grad(F.model[kOutNorm]) : nullptr, nullptr);
  ctx.group_done("output");
  for (size_t li = w.layers.size(); li-- > 0;) {
    const LlamaLayer& L = w.layers[li];
    LayerSaved& s = saved[li];
    if (so.checkpoint) {  // recompute this layer's activations from its saved input
      Buf replay = copy_of(x, s.x_in);
      layer_forward(li, replay);
    }
    auto grad_of = [&](int k) { return F.on ? tr.full_grad(F.layers[li][k]) : nullptr; };
    float* norm_grad[2] = {grad_of(kAttnNorm), grad_of(kFfnNorm)};
    // The gradient of a branch's product output: dy itself, or (Gemma) back through its post-norm.
    auto branch_grad = [&](const float* post_norm, const Buf& out, const float* dy, int weight) {
      Buf d = ctx.buffer(post_norm ? n * c.dim : 0);
      if (post_norm) op.rmsnorm_backward(x, out.data(), post_norm, dy, n, c.dim, c.eps, d.data(), grad_of(weight), nullptr);
      return d;
    };
    // MLP: x_out = x_mid + [post_norm](down(act(gate(h2)) · up(h2))).
    Buf da = ctx.buffer(n * c.ffn), dg = ctx.buffer(n * c.ffn), du = ctx.buffer(n * c.ffn), dh2 = ctx.buffer(n * c.dim);
    const Buf dmo = branch_grad(L.post_ffn_norm, s.mo, dx.data(), kPostFfnNorm);
    project_back(ctx, linear(li, kDown), s.a.data(), L.post_ffn_norm ? dmo.data() : dx.data(), n, s.t[kDown], da.data(), false);
    (c.gelu_gate ? op.geglu_backward : op.swiglu_backward)(x, s.g.data(), s.u.data(), da.data(), n * c.ffn, dg.data(), du.data());
    project_back(ctx, linear(li, kGate), s.h2.data(), dg.data(), n, s.t[kGate], dh2.data(), false);
    project_back(ctx, linear(li, kUp), s.h2.data(), du.data(), n, s.t[kUp], dh2.data(), true);
    Buf dmid = ctx.buffer(n * c.dim);
    op.rmsnorm_backward(x, s.x_mid.data(), L.ffn_norm, dh2.data(), n, c.dim, c.eps, dmid.data(), norm_grad[1], dx.data());
    // Attention: x_mid = x_in + [post_norm](o(attn(rope(q(h1)), rope(k(h1)), v(h1)))).
    Buf datt = ctx.buffer(n * qdim), dq = ctx.buffer(n * qdim), dk = ctx.buffer(n * kvdim), dv = ctx.buffer(n * kvdim);
    Buf dh1 = ctx.buffer(n * c.dim);
    const Buf dao = branch_grad(L.post_attn_norm, s.ao, dmid.data(), kPostAttnNorm);
    project_back(ctx, linear(li, kO), s.att.data(), L.post_attn_norm ? dao.data() : dmid.data(), n, s.t[kO], datt.data(), false);
    op.attention_backward(x, s.q.data(), s.k.data(), s.v.data(), s.att.data(), s.lse.data(), datt.data(),
                          rows.segments, c.heads, c.kv_heads, c.head_dim, dq.data(), dk.data(), dv.data(), so.bf16,
                          attention_scores(c, li));
    if (qf != 1.0f) op.scale(x, dq.data(), qf, n * qdim);
    const RopeTable& rope = ropes[local_rope(c, li) ? 1 : 0];
    op.rope_backward(x, dq.data(), c.heads, rope);
    op.rope_backward(x, dk.data(), c.kv_heads, rope);
    if (L.q_norm) {  // back through the per-head norms (dw reads dy after dx is written: not in place)
      Buf dq_in = ctx.buffer(n * qdim), dk_in = ctx.buffer(n * kvdim);
      op.rmsnorm_backward(x, s.q_raw.data(), L.q_norm, dq.data(), n * c.heads, c.head_dim, c.eps, dq_in.data(),
                          F.on ? tr.full_grad(F.layers[li][kQNorm]) : nullptr, nullptr);
      op.rmsnorm_backward(x, s.k_raw.data(), L.k_norm, dk.data(), n * c.kv_heads, c.head_dim, c.eps, dk_in.data(),
                          F.on ? tr.full_grad(F.layers[li][kKNorm]) : nullptr, nullptr);
      x.backend->copy(dq.data(), dq_in.data(), static_cast<size_t>(n * qdim) * sizeof(float));
      x.backend->copy(dk.data(), dk_in.data(), static_cast<size_t>(n * kvdim) * sizeof(float));
    }
    // The bottom layer's input gradient only reaches the embedding, which trains only in full
    // fine-tuning: otherwise its three input products and the norm's backward are skipped.
    float* dh1p = li > 0 || F.on ? dh1.data() : nullptr;
    project_back(ctx, linear(li, kQ), s.h1.data(), dq.data(), n, s.t[kQ], dh1p, false);
    project_back(ctx, linear(li, kK), s.h1.data(), dk.data(), n, s.t[kK], dh1p, true);
    project_back(ctx, linear(li, kV), s.h1.data(), dv.data(), n, s.t[kV], dh1p, true);
    if (dh1p)
      op.rmsnorm_backward(x, s.x_in.data(), L.attn_norm, dh1.data(), n, c.dim, c.eps, dx.data(), norm_grad[0], dmid.data());
    if (so.checkpoint) drop(s);
    ctx.group_done("layer." + std::to_string(li));
  }
  if (F.on) {
    if (c.embed_scale > 0) op.scale(x, dx.data(), c.embed_scale, n * c.dim);
    op.embedding_backward(x, tr.full_grad(F.model[kEmbed]), tokens, dx.data(), n, c.dim);  // dE[token] += dx[t]
  }
  return result;
}

}  // namespace tk
