#include "gpt2.h"

#include <cmath>

#include "../ops/attention.h"
#include "../ops/gelu.h"
#include "../ops/gemm.h"
#include "../ops/layernorm.h"
#include "llama.h"

namespace tk {
namespace {

// out = X·W + bias (+ beta·out), W a Conv1D weight [in, out].
void conv1d(const float* x, int64_t n, const WeightView& w, const float* bias, float* out, float beta, Isa isa,
            ThreadPool& pool) {
  GemmArgs g;
  g.m = n, g.n = w.cols, g.k = w.rows;
  g.a.data = x, g.a.ld = w.rows;
  g.b.weights = &w;
  g.c = out, g.ldc = w.cols, g.beta = beta;
  gemm(g, isa, pool);
  add_bias(out, bias, n, w.cols);
}

}  // namespace

void gpt2_logits(const Gpt2Config& c, const Gpt2Weights& w, const int32_t* tokens, int64_t n, float* logits, Isa isa,
                 ThreadPool& pool) {
  const int64_t d = c.dim, hd = d / c.heads;
  std::vector<float> x(n * d), h(n * d), qkv(n * 3 * d), q(n * d), k(n * d), v(n * d), att(n * d), f(n * c.ffn);
  for (int64_t t = 0; t < n; ++t) {
    w.wte.decode(tokens[t], 0, d, x.data() + t * d);
    for (int64_t i = 0; i < d; ++i) x[t * d + i] += w.wpe[t * d + i];
  }
  for (const Gpt2Layer& L : w.layers) {
    layernorm_forward(x.data(), L.ln1_w, L.ln1_b, n, d, c.eps, h.data(), pool);
    conv1d(h.data(), n, L.attn, L.attn_b, qkv.data(), 0.0f, isa, pool);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < d; ++i) {
        q[t * d + i] = qkv[t * 3 * d + i];
        k[t * d + i] = qkv[t * 3 * d + d + i];
        v[t * d + i] = qkv[t * 3 * d + 2 * d + i];
      }
    attention_causal_forward(q.data(), k.data(), v.data(), n, 0, c.heads, c.heads, hd, att.data(), isa, pool);
    conv1d(att.data(), n, L.proj, L.proj_b, x.data(), 1.0f, isa, pool);  // residual
    layernorm_forward(x.data(), L.ln2_w, L.ln2_b, n, d, c.eps, h.data(), pool);
    conv1d(h.data(), n, L.fc, L.fc_b, f.data(), 0.0f, isa, pool);
    for (float& e : f) e = gelu_tanh(e);
    conv1d(f.data(), n, L.fc_proj, L.fc_proj_b, x.data(), 1.0f, isa, pool);  // residual
  }
  layernorm_forward(x.data(), w.lnf_w, w.lnf_b, n, d, c.eps, h.data(), pool);
  GemmArgs g;  // tied head: logits = h·wteᵀ
  g.m = n, g.n = c.vocab, g.k = d;
  g.a.data = h.data(), g.a.ld = d;
  g.b.weights = &w.wte, g.b.trans = true;
  g.c = logits, g.ldc = c.vocab;
  gemm(g, isa, pool);
}

}  // namespace tk
