#include "llama.h"

#include <algorithm>
#include <cmath>

#include "train_step.h"

namespace tk {

const WeightView& projection(const LlamaLayer& L, int p) {
  const WeightView* views[kProjections] = {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
  return *views[p];
}

WeightView& projection(LlamaLayer& L, int p) { return const_cast<WeightView&>(projection(static_cast<const LlamaLayer&>(L), p)); }

LlamaWeights llama_weights_with(const LlamaWeights& w, const LlamaConfig& c, const Trainable* t) {
  if (!t || !t->full.on) return w;
  const FullLayout& F = t->full;
  LlamaWeights r = w;
  const float* P = t->params.data();
  r.embed = t->full_view(F.model[kEmbed], c.vocab, c.dim);
  r.out_norm = P + F.model[kOutNorm];
  r.lm_head = F.model[kLmHead] >= 0 ? t->full_view(F.model[kLmHead], c.vocab, c.dim) : r.embed;
  for (size_t li = 0; li < r.layers.size(); ++li) {
    LlamaLayer& L = r.layers[li];
    const std::vector<int64_t>& at = F.layers[li];
    L.attn_norm = P + at[kAttnNorm];
    L.ffn_norm = P + at[kFfnNorm];
    if (L.q_norm) L.q_norm = P + at[kQNorm], L.k_norm = P + at[kKNorm];
    if (L.post_attn_norm) L.post_attn_norm = P + at[kPostAttnNorm], L.post_ffn_norm = P + at[kPostFfnNorm];
    for (int p = 0; p < kProjections; ++p) {
      WeightView& v = projection(L, p);
      v = t->full_view(at[p], v.rows, v.cols);
    }
  }
  return r;
}

std::array<RopeTable, 2> llama_rope_tables(const LlamaConfig& c, const int32_t* positions, int64_t n) {
  std::array<RopeTable, 2> t;
  int32_t last = 0;
  for (int64_t i = 0; i < n; ++i) last = std::max(last, positions[i]);
  const bool long_factors = !c.rope_freq_factors_long.empty() && last >= c.rope_long_after;
  const std::vector<float>& factors = long_factors ? c.rope_freq_factors_long : c.rope_freq_factors;
  float theta = c.rope_theta;
  if (c.rope_dynamic_factor > 0 && last + 1 > c.rope_dynamic_after) {
    const double f = c.rope_dynamic_factor, d = static_cast<double>(c.rotary_dim > 0 ? c.rotary_dim : c.head_dim);
    theta = static_cast<float>(c.rope_theta * std::pow(f * (last + 1) / static_cast<double>(c.rope_dynamic_after) - (f - 1), d / (d - 2)));
  }
  t[0] = rope_table(positions, n, c.head_dim, theta, c.interleaved_rope, factors.empty() ? nullptr : factors.data(), c.rotary_dim,
                    static_cast<float>(c.rope_attention_factor));
  for (size_t li = 0; li < static_cast<size_t>(c.layers); ++li)
    if (local_rope(c, li)) {
      t[1] = rope_table(positions, n, c.head_dim, c.rope_theta_local, c.interleaved_rope, nullptr, c.rotary_dim);
      break;
    }
  return t;
}

LlamaCache::LlamaCache(const LlamaConfig& c, int64_t cap, const ExecContext& x) : capacity(cap) {
  for (int64_t i = 0; i < c.layers; ++i)
    k.emplace_back(x, cap * c.kv_heads * c.head_dim, true), v.emplace_back(x, cap * c.kv_heads * c.head_dim, true);
}

void LlamaCache::grow(int64_t cap, const ExecContext& x) {
  for (std::vector<Buffer>* kv : {&k, &v})
    for (Buffer& b : *kv) {
      const int64_t per_token = b.size() / capacity;
      Buffer bigger(x, cap * per_token, true);
      if (length) x.backend->copy(bigger.data(), b.data(), static_cast<size_t>(length * per_token) * sizeof(float));
      b = std::move(bigger);
    }
  capacity = cap;
}

void llama_forward(const LlamaConfig& c, const LlamaWeights& w, const int32_t* tokens, int64_t n, LlamaCache* cache,
                   float* logits, const ExecContext& ex, const Trainable* lora) {
  // longrope: the cached keys were rotated with the short factors; the first forward to pass the
  // original context recomputes the whole sequence with the long ones (transformers' Phi-3 drops
  // its cache there too), so every continuation equals the full forward of its sequence.
  if (cache && cache->length > 0 && !c.rope_freq_factors_long.empty() && cache->length <= c.rope_long_after &&
      cache->length + n > c.rope_long_after) {
    std::vector<int32_t> all = cache->tokens;
    all.insert(all.end(), tokens, tokens + n);
    cache->length = 0, cache->tokens.clear();
    return llama_forward(c, w, all.data(), static_cast<int64_t>(all.size()), cache, logits, ex, lora);
  }
  const ForwardContext forward(lora, ex);
  const StepContext& ctx = forward.ctx;
  const OpTable& op = ctx.op;
  const ExecContext& x = ctx.x;
  const int64_t qdim = c.heads * c.head_dim, kvdim = c.kv_heads * c.head_dim;
  const int64_t offset = cache ? cache->length : 0;
  Buf h = ctx.buffer(n * c.dim), hn = ctx.buffer(n * c.dim), q = ctx.buffer(n * qdim), att = ctx.buffer(n * qdim);
  Buf gate = ctx.buffer(n * c.ffn), up = ctx.buffer(n * c.ffn), saved;
  Buf k_local = ctx.buffer(cache ? 0 : n * kvdim), v_local = ctx.buffer(cache ? 0 : n * kvdim);
  const std::vector<int32_t> positions = positions_from(offset, n);
  op.embedding_forward(x, w.embed, tokens, n, h.data(), false);
  if (c.embed_scale > 0) op.scale(x, h.data(), c.embed_scale, n * c.dim);
  const std::array<RopeTable, 2> ropes = llama_rope_tables(c, positions.data(), n);
  const float qf = query_factor(c);
  Buf branch = ctx.buffer(w.layers.empty() || !w.layers[0].post_attn_norm ? 0 : n * c.dim);
  // A branch's output joins the residual stream: straight in, or through its post-norm (Gemma).
  auto join = [&](const Linear& l, const float* in, const float* post_norm) {
    if (!post_norm) return project(ctx, l, in, n, h.data(), saved, true);  // h += in·Wᵀ
    project(ctx, l, in, n, branch.data(), saved);
    op.rmsnorm_forward(x, branch.data(), post_norm, n, c.dim, c.eps, hn.data());
    op.add(x, h.data(), hn.data(), n * c.dim);
  };
  for (size_t layer = 0; layer < w.layers.size(); ++layer) {
    const LlamaLayer& L = w.layers[layer];
    auto linear = [&](int p) {
      Linear l;
      l.w = &projection(L, p);
      l.bias = p == kQ ? L.q_bias : p == kK ? L.k_bias : p == kV ? L.v_bias : nullptr;  // Qwen2's
      l.lora = lora ? lora->slot(layer, p) : nullptr;
      return l;
    };
    // New keys/values land after the cached ones; attention then reads the whole history.
    float* kbuf = cache ? cache->k[layer].data() : k_local.data();
    float* vbuf = cache ? cache->v[layer].data() : v_local.data();
    float* k = kbuf + offset * kvdim;
    float* v = vbuf + offset * kvdim;
    op.rmsnorm_forward(x, h.data(), L.attn_norm, n, c.dim, c.eps, hn.data());
    project(ctx, linear(kQ), hn.data(), n, q.data(), saved);
    project(ctx, linear(kK), hn.data(), n, k, saved);
    project(ctx, linear(kV), hn.data(), n, v, saved);
    if (L.q_norm) {  // Qwen3, Gemma 3: each head's q and k normalized (in place) before RoPE
      op.rmsnorm_forward(x, q.data(), L.q_norm, n * c.heads, c.head_dim, c.eps, q.data());
      op.rmsnorm_forward(x, k, L.k_norm, n * c.kv_heads, c.head_dim, c.eps, k);
    }
    const RopeTable& rope = ropes[local_rope(c, layer) ? 1 : 0];
    op.rope_forward(x, q.data(), c.heads, rope);
    op.rope_forward(x, k, c.kv_heads, rope);
    if (qf != 1.0f) op.scale(x, q.data(), qf, n * qdim);
    op.attention_forward_cached(x, q.data(), kbuf, vbuf, n, offset, c.heads, c.kv_heads, c.head_dim, att.data(), false,
                                attention_scores(c, layer));
    join(linear(kO), att.data(), L.post_attn_norm);
    op.rmsnorm_forward(x, h.data(), L.ffn_norm, n, c.dim, c.eps, hn.data());
    project(ctx, linear(kGate), hn.data(), n, gate.data(), saved);
    project(ctx, linear(kUp), hn.data(), n, up.data(), saved);
    // silu(gate) * up (Gemma: gelu_tanh(gate) * up), in place
    (c.gelu_gate ? op.geglu_forward : op.swiglu_forward)(x, gate.data(), up.data(), n * c.ffn, gate.data());
    join(linear(kDown), gate.data(), L.post_ffn_norm);
  }
  // With a cache only the next-token distribution is needed.
  const int64_t rows = cache ? 1 : n;
  if (cache) cache->length += n, cache->tokens.insert(cache->tokens.end(), tokens, tokens + n);
  op.rmsnorm_forward(x, h.data() + (n - rows) * c.dim, w.out_norm, rows, c.dim, c.eps, hn.data());
  Buf out = ctx.buffer(rows * c.vocab);
  Linear head;
  head.w = &w.lm_head;
  project(ctx, head, hn.data(), rows, out.data(), saved);
  if (c.logit_softcap > 0) op.softcap(x, out.data(), c.logit_softcap, rows * c.vocab);
  x.backend->copy_to_host(logits, out.data(), static_cast<size_t>(out.size()) * sizeof(float));
}

}  // namespace tk
