#include "llama.h"

#include <cmath>

#include "../ops/attention.h"
#include "../ops/gemm.h"
#include "../ops/lora_linear.h"
#include "../ops/rmsnorm.h"
#include "../ops/rope.h"
#include "../ops/swiglu.h"
#include "train_step.h"

namespace tk {
namespace {

// out = X·Wᵀ (+ the adapter's s·X·Aᵀ·Bᵀ) + beta * out, X [n, in], W [outdim, in].
void linear(const float* x, int64_t n, int64_t in, const WeightView& w, float* out, float beta, Isa isa,
            ThreadPool& pool, const Trainable* lora = nullptr, const LoraSlot* slot = nullptr) {
  if (lora && slot) {
    LoraLinearArgs g;
    g.m = n, g.in = in, g.out = w.rows, g.r = slot->r;
    g.x = x;
    g.w.weights = &w;
    g.a = lora->params.data() + slot->a_offset;
    g.b = lora->params.data() + slot->b_offset;
    g.scale = slot->scale;
    std::vector<float> y(static_cast<size_t>(n * w.rows)), t(static_cast<size_t>(n * slot->r));
    lora_linear_forward(g, y.data(), t.data(), isa, pool);
    for (int64_t i = 0; i < n * w.rows; ++i) out[i] = y[i] + (beta == 0.0f ? 0.0f : beta * out[i]);
    return;
  }
  GemmArgs g;
  g.m = n, g.n = w.rows, g.k = in;
  g.a.data = x, g.a.ld = in;
  g.b.weights = &w, g.b.trans = true;
  g.c = out, g.ldc = w.rows, g.beta = beta;
  gemm(g, isa, pool);
}

}  // namespace

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
    for (int p = 0; p < kProjections; ++p) {
      WeightView& v = projection(L, p);
      v = t->full_view(at[p], v.rows, v.cols);
    }
  }
  return r;
}

LlamaCache::LlamaCache(const LlamaConfig& c, int64_t cap) : capacity(cap), k(c.layers), v(c.layers) {
  const size_t size = static_cast<size_t>(cap * c.kv_heads * c.head_dim);
  for (int64_t i = 0; i < c.layers; ++i) k[i].assign(size, 0.0f), v[i].assign(size, 0.0f);
}

void llama_forward(const LlamaConfig& c, const LlamaWeights& w, const int32_t* tokens, int64_t n, LlamaCache* cache,
                   float* logits, Isa isa, ThreadPool& pool, const Trainable* lora) {
  const int64_t qdim = c.heads * c.head_dim, kvdim = c.kv_heads * c.head_dim;
  const int64_t offset = cache ? cache->length : 0;
  std::vector<float> x(n * c.dim), h(n * c.dim), q(n * qdim), att(n * qdim), gate(n * c.ffn), up(n * c.ffn);
  std::vector<float> k_local, v_local;
  if (!cache) k_local.resize(n * kvdim), v_local.resize(n * kvdim);
  std::vector<int32_t> positions(n);
  for (int64_t t = 0; t < n; ++t) {
    positions[t] = static_cast<int32_t>(offset + t);
    w.embed.decode(tokens[t], 0, c.dim, x.data() + t * c.dim);
  }
  const RopeTable rope = rope_table(positions.data(), n, c.head_dim, c.rope_theta, c.interleaved_rope);
  for (size_t layer = 0; layer < w.layers.size(); ++layer) {
    const LlamaLayer& L = w.layers[layer];
    auto slot = [&](LlamaProjection p) { return lora ? lora->slot(layer, p) : nullptr; };
    // New keys/values land after the cached ones; attention then reads the whole history.
    float* kbuf = cache ? cache->k[layer].data() : k_local.data();
    float* vbuf = cache ? cache->v[layer].data() : v_local.data();
    float* k = kbuf + offset * kvdim;
    float* v = vbuf + offset * kvdim;
    rmsnorm_forward(x.data(), L.attn_norm, n, c.dim, c.eps, h.data(), pool);
    linear(h.data(), n, c.dim, L.q, q.data(), 0.0f, isa, pool, lora, slot(kQ));
    linear(h.data(), n, c.dim, L.k, k, 0.0f, isa, pool, lora, slot(kK));
    linear(h.data(), n, c.dim, L.v, v, 0.0f, isa, pool, lora, slot(kV));
    add_bias(q.data(), L.q_bias, n, qdim, pool);
    add_bias(k, L.k_bias, n, kvdim, pool);
    add_bias(v, L.v_bias, n, kvdim, pool);
    rope_forward(q.data(), c.heads, rope, pool);
    rope_forward(k, c.kv_heads, rope, pool);
    attention_causal_forward(q.data(), kbuf, vbuf, n, offset, c.heads, c.kv_heads, c.head_dim, att.data(), isa, pool, false,
                             c.sliding_window);
    linear(att.data(), n, qdim, L.o, x.data(), 1.0f, isa, pool, lora, slot(kO));  // residual: x += attn·Woᵀ
    rmsnorm_forward(x.data(), L.ffn_norm, n, c.dim, c.eps, h.data(), pool);
    linear(h.data(), n, c.dim, L.gate, gate.data(), 0.0f, isa, pool, lora, slot(kGate));
    linear(h.data(), n, c.dim, L.up, up.data(), 0.0f, isa, pool, lora, slot(kUp));
    swiglu_forward(gate.data(), up.data(), n * c.ffn, gate.data(), pool, isa);  // silu(gate) * up, in place
    linear(gate.data(), n, c.ffn, L.down, x.data(), 1.0f, isa, pool, lora, slot(kDown));  // residual: x += mlp·Wdᵀ
  }
  if (cache) {  // only the next-token distribution is needed
    cache->length += n;
    rmsnorm_forward(x.data() + (n - 1) * c.dim, w.out_norm, 1, c.dim, c.eps, h.data(), pool);
    linear(h.data(), 1, c.dim, w.lm_head, logits, 0.0f, isa, pool);
    return;
  }
  rmsnorm_forward(x.data(), w.out_norm, n, c.dim, c.eps, h.data(), pool);
  linear(h.data(), n, c.dim, w.lm_head, logits, 0.0f, isa, pool);
}

}  // namespace tk
