#include "attention.h"

#include <cmath>
#include <vector>

#include "../core/vexp.h"
#include "gemm.h"

namespace tk {

namespace {

// C = alpha · op(A)·op(B) + beta · C on strided row-major views (one head's slice of q/k/v).
void head_gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool ta, const float* b, int64_t ldb,
               bool tb, float* c, int64_t ldc, float alpha, float beta, Isa isa, ThreadPool& pool, bool bf16) {
  GemmArgs g;
  g.m = m, g.n = n, g.k = k;
  g.a.data = a, g.a.ld = lda, g.a.trans = ta;
  g.b.data = b, g.b.ld = ldb, g.b.trans = tb;
  g.c = c, g.ldc = ldc, g.alpha = alpha, g.beta = beta, g.bf16 = bf16;
  gemm(g, isa, pool);
}

// Row-wise causal softmax of S [n, total] in place: query t sees keys 0..offset+t (the last
// `window` of them when window > 0). Rows split across the pool (each row is independent).
void causal_softmax(float* s, int64_t n, int64_t total, int64_t offset, ThreadPool& pool, int64_t window, Isa isa) {
  const int tasks = n * total < 8192 ? 1 : pool.size();
  pool.run(tasks, [&](int task) { for (int64_t t = n * task / tasks; t < n * (task + 1) / tasks; ++t) {
    float* row = s + t * total;
    const int64_t last = offset + t, first = window > 0 && last + 1 > window ? last + 1 - window : 0;
    float max = -INFINITY;
    for (int64_t j = first; j <= last; ++j) max = row[j] > max ? row[j] : max;
    const double sum = exp_shifted_sum(row + first, max, last - first + 1, row + first, isa);
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < first; ++j) row[j] = 0.0f;
    for (int64_t j = first; j <= last; ++j) row[j] *= inv;
    for (int64_t j = last + 1; j < total; ++j) row[j] = 0.0f;
  } });
}

}  // namespace

void attention_causal_forward(const float* q, const float* k, const float* v, int64_t n, int64_t offset,
                              int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* out, Isa isa, ThreadPool& pool,
                              bool bf16, int64_t window) {
  const int64_t group = q_heads / kv_heads, total = offset + n;
  const int64_t ldq = q_heads * head_dim, ldkv = kv_heads * head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::vector<float> s(static_cast<size_t>(n * total));
  for (int64_t h = 0; h < q_heads; ++h) {  // heads in turn; each GEMM uses every thread
    const int64_t g = h / group;
    head_gemm(n, total, head_dim, q + h * head_dim, ldq, false, k + g * head_dim, ldkv, true, s.data(), total, scale,
              0.0f, isa, pool, bf16);
    causal_softmax(s.data(), n, total, offset, pool, window, isa);
    head_gemm(n, head_dim, total, s.data(), total, false, v + g * head_dim, ldkv, false, out + h * head_dim, ldq, 1.0f,
              0.0f, isa, pool, bf16);
  }
}

void attention_causal_backward(const float* q, const float* k, const float* v, const float* dout, int64_t n,
                               int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* dq, float* dk, float* dv,
                               Isa isa, ThreadPool& pool, bool bf16, int64_t window) {
  const int64_t group = q_heads / kv_heads;
  const int64_t ldq = q_heads * head_dim, ldkv = kv_heads * head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::vector<float> p(static_cast<size_t>(n * n)), dp(static_cast<size_t>(n * n));
  for (int64_t h = 0; h < q_heads; ++h) {
    const int64_t g = h / group;
    const bool first_of_group = h % group == 0;  // dk, dv of this group are overwritten, then summed into
    const float* qh = q + h * head_dim;
    const float* kg = k + g * head_dim;
    const float* vg = v + g * head_dim;
    const float* doh = dout + h * head_dim;
    head_gemm(n, n, head_dim, qh, ldq, false, kg, ldkv, true, p.data(), n, scale, 0.0f, isa, pool, bf16);  // P = softmax(S)
    causal_softmax(p.data(), n, n, 0, pool, window, isa);
    head_gemm(n, n, head_dim, doh, ldq, false, vg, ldkv, true, dp.data(), n, 1.0f, 0.0f, isa, pool, bf16);  // dP = dO·Vᵀ
    for (int64_t t = 0; t < n; ++t) {  // dS = P ⊙ (dP − rowsum(P ⊙ dP)), times the score scale
      float* pr = p.data() + t * n;
      float* dr = dp.data() + t * n;
      double d = 0.0;
      for (int64_t j = 0; j <= t; ++j) d += static_cast<double>(pr[j]) * dr[j];
      for (int64_t j = 0; j < n; ++j) dr[j] = j <= t ? pr[j] * (dr[j] - static_cast<float>(d)) * scale : 0.0f;
    }
    head_gemm(n, head_dim, n, dp.data(), n, false, kg, ldkv, false, dq + h * head_dim, ldq, 1.0f, 0.0f, isa, pool, bf16);
    head_gemm(n, head_dim, n, dp.data(), n, true, qh, ldq, false, dk + g * head_dim, ldkv, 1.0f,
              first_of_group ? 0.0f : 1.0f, isa, pool, bf16);
    head_gemm(n, head_dim, n, p.data(), n, true, doh, ldq, false, dv + g * head_dim, ldkv, 1.0f,
              first_of_group ? 0.0f : 1.0f, isa, pool, bf16);
  }
}

}  // namespace tk
