#include "../../ops/attention.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "vexp.h"
#include "../../ops/gemm.h"
#include "kernels.h"

namespace tk {
namespace cpu {

namespace {

constexpr int64_t kQueryBlock = 64;

struct Shape {
  int64_t q_heads, kv_heads, head_dim, group, ldq, ldkv;
  float scale;
  bool bf16;
  int64_t window;
  float softcap;
  Isa isa;
};

Shape make_shape(int64_t q_heads, int64_t kv_heads, int64_t head_dim, bool bf16, AttentionScores scores, Isa isa) {
  return {q_heads, kv_heads, head_dim, q_heads / kv_heads, q_heads * head_dim, kv_heads * head_dim,
          1.0f / std::sqrt(static_cast<float>(head_dim)), bf16, scores.window, scores.softcap, isa};
}

// C = alpha · op(A)·op(B) + beta · C on strided row-major views, on the calling thread alone.
void head_gemm(const Shape& sh, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool ta, const float* b,
               int64_t ldb, bool tb, float* c, int64_t ldc, float alpha, float beta, const GemmPanels* panels = nullptr) {
  thread_local ThreadPool serial(1);
  GemmArgs g;
  g.m = m, g.n = n, g.k = k;
  g.a.data = a, g.a.ld = lda, g.a.trans = ta;
  g.b.data = b, g.b.ld = ldb, g.b.trans = tb;
  g.b.panels[tb ? 1 : 0] = panels;
  g.c = c, g.ldc = ldc, g.alpha = alpha, g.beta = beta, g.bf16 = sh.bf16;
  gemm(g, sh.isa, serial);
}

// The first key a query at position p sees; the last is p itself.
int64_t first_key(int64_t p, int64_t window) { return window > 0 && p + 1 > window ? p + 1 - window : 0; }

// A block of query rows [i0, i0 + rows) at positions offset + i0.. and the keys [j0, j0 + nk) that
// any of them sees.
struct Block {
  int64_t i0, rows, j0, nk;
};

Block query_block(int64_t i0, int64_t n, int64_t offset, int64_t window) {
  const int64_t rows = std::min(kQueryBlock, n - i0), j0 = first_key(offset + i0, window);
  return {i0, rows, j0, offset + i0 + rows - j0};
}

// Soft-capping of a row's seen scores x [n] in place: x = cap·tanh(x / cap), through the
// vectorized σ (tanh z = 2σ(2z) − 1; its absolute error, cap·1e-7, is far below a score's).
// tanh_out [n] (may be null) keeps tanh for the backward's 1 − tanh².
void softcap_row(float* x, int64_t n, float cap, float* tanh_out, Isa isa) {
  scale_in_place(x, n, 2.0f / cap, isa);
  sigmoid(x, n, x, isa);
  for (int64_t i = 0; i < n; ++i) {
    const float t = 2.0f * x[i] - 1.0f;
    x[i] = cap * t;
    if (tanh_out) tanh_out[i] = t;
  }
}

// Scores of a block -> probabilities in place: s [rows, nk]; entries a row does not see become 0.
// With soft-capping, tanh of each seen capped score goes to tanh_out [rows, nk] when given.
void block_softmax(const Shape& sh, const Block& b, int64_t offset, float* s, float* tanh_out) {
  for (int64_t t = 0; t < b.rows; ++t) {
    float* row = s + t * b.nk;
    const int64_t p = offset + b.i0 + t, lo = first_key(p, sh.window) - b.j0, hi = p - b.j0;
    if (sh.softcap > 0) softcap_row(row + lo, hi - lo + 1, sh.softcap, tanh_out ? tanh_out + t * b.nk + lo : nullptr, sh.isa);
    const float max = max_of(row + lo, hi - lo + 1, sh.isa);
    const float inv = static_cast<float>(1.0 / exp_shifted_sum(row + lo, max, hi - lo + 1, row + lo, sh.isa));
    std::fill(row, row + lo, 0.0f);
    scale_in_place(row + lo, hi - lo + 1, inv, sh.isa);
    std::fill(row + hi + 1, row + b.nk, 0.0f);
  }
}

// A head's keys or values packed once for the bf16 products of all its query blocks (as Kᵀ, K,
// Vᵀ or V); none without bf16, or with a sliding window (blocks would start mid-panel).
std::unique_ptr<GemmPanels> head_panels(const Shape& sh, const float* x, int64_t n, bool trans) {
  if (!sh.bf16 || sh.window > 0) return nullptr;
  return trans ? gemm_pack_dense_panels(x, sh.ldkv, true, sh.head_dim, n, sh.isa)
               : gemm_pack_dense_panels(x, sh.ldkv, false, n, sh.head_dim, sh.isa);
}

// P of a block: softmax([softcap] scale · Q_block · K_keysᵀ), into p [rows, nk] (tanh_out: as block_softmax).
void block_probabilities(const Shape& sh, const Block& b, int64_t offset, const float* qh, const float* kg, float* p,
                         const GemmPanels* kt, float* tanh_out = nullptr) {
  head_gemm(sh, b.rows, b.nk, sh.head_dim, qh + b.i0 * sh.ldq, sh.ldq, false, kg + b.j0 * sh.ldkv, sh.ldkv, true, p, b.nk,
            sh.scale, 0.0f, b.j0 == 0 ? kt : nullptr);
  block_softmax(sh, b, offset, p, tanh_out);
}

void forward_head(const Shape& sh, const float* q, const float* k, const float* v, int64_t n, int64_t offset, int64_t h,
                  float* out) {
  const int64_t g = h / sh.group;
  const float *qh = q + h * sh.head_dim, *kg = k + g * sh.head_dim, *vg = v + g * sh.head_dim;
  std::vector<float> p(static_cast<size_t>(std::min(kQueryBlock, n) * (offset + n)));
  const bool blocks = n > kQueryBlock;  // one block: nothing to share
  const auto kt = blocks ? head_panels(sh, kg, offset + n, true) : nullptr, vn = blocks ? head_panels(sh, vg, offset + n, false) : nullptr;
  for (int64_t i0 = 0; i0 < n; i0 += kQueryBlock) {
    const Block b = query_block(i0, n, offset, sh.window);
    block_probabilities(sh, b, offset, qh, kg, p.data(), kt.get());
    head_gemm(sh, b.rows, sh.head_dim, b.nk, p.data(), b.nk, false, vg + b.j0 * sh.ldkv, sh.ldkv, false,
              out + i0 * sh.ldq + h * sh.head_dim, sh.ldq, 1.0f, 0.0f, b.j0 == 0 ? vn.get() : nullptr);
  }
}

// One head of one sequence: writes dq's columns of head h, adds into dk_h / dv_h (row stride ld,
// zeroed by the caller) this head's share of its key/value head's gradients.
void backward_head(const Shape& sh, const float* q, const float* k, const float* v, const float* dout, int64_t n,
                   int64_t h, float* dq, float* dk_h, float* dv_h, int64_t ld) {
  const int64_t g = h / sh.group, hd = sh.head_dim;
  const float *qh = q + h * hd, *kg = k + g * hd, *vg = v + g * hd, *doh = dout + h * hd;
  const size_t block_floats = static_cast<size_t>(std::min(kQueryBlock, n) * n);
  std::vector<float> p(block_floats), dp(block_floats), tanh(sh.softcap > 0 ? block_floats : 0);
  const bool blocks = n > kQueryBlock;
  const auto kt = blocks ? head_panels(sh, kg, n, true) : nullptr, kn = blocks ? head_panels(sh, kg, n, false) : nullptr;
  const auto vt = blocks ? head_panels(sh, vg, n, true) : nullptr;
  for (int64_t i0 = 0; i0 < n; i0 += kQueryBlock) {
    const Block b = query_block(i0, n, 0, sh.window);
    block_probabilities(sh, b, 0, qh, kg, p.data(), kt.get(), tanh.empty() ? nullptr : tanh.data());
    // dP = dO·Vᵀ
    head_gemm(sh, b.rows, b.nk, hd, doh + i0 * sh.ldq, sh.ldq, false, vg + b.j0 * sh.ldkv, sh.ldkv, true, dp.data(), b.nk,
              1.0f, 0.0f, b.j0 == 0 ? vt.get() : nullptr);
    for (int64_t t = 0; t < b.rows; ++t) {  // dS = P ⊙ (dP − rowsum(P ⊙ dP)), times the score scale
      const float* pr = p.data() + t * b.nk;
      float* dr = dp.data() + t * b.nk;
      const int64_t pos = i0 + t, lo = first_key(pos, sh.window) - b.j0, hi = pos - b.j0;
      std::fill(dr, dr + lo, 0.0f);
      softmax_backward_row(pr + lo, dr + lo, hi - lo + 1, sh.scale, sh.isa);
      if (!tanh.empty()) {  // through the cap: d score = d capped · (1 − tanh²)
        const float* th = tanh.data() + t * b.nk;
        for (int64_t j = lo; j <= hi; ++j) dr[j] *= 1.0f - th[j] * th[j];
      }
      std::fill(dr + hi + 1, dr + b.nk, 0.0f);
    }
    head_gemm(sh, b.rows, hd, b.nk, dp.data(), b.nk, false, kg + b.j0 * sh.ldkv, sh.ldkv, false, dq + i0 * sh.ldq + h * hd,
              sh.ldq, 1.0f, 0.0f, b.j0 == 0 ? kn.get() : nullptr);
    head_gemm(sh, b.nk, hd, b.rows, dp.data(), b.nk, true, qh + i0 * sh.ldq, sh.ldq, false, dk_h + b.j0 * ld, ld, 1.0f,
              1.0f);
    head_gemm(sh, b.nk, hd, b.rows, p.data(), b.nk, true, doh + i0 * sh.ldq, sh.ldq, false, dv_h + b.j0 * ld, ld, 1.0f,
              1.0f);
  }
}

}  // namespace

void attention_causal_forward(const float* q, const float* k, const float* v, int64_t n, int64_t offset,
                              int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* out, Isa isa, ThreadPool& pool,
                              bool bf16, AttentionScores scores) {
  const Shape sh = make_shape(q_heads, kv_heads, head_dim, bf16, scores, isa);
  pool.run(static_cast<int>(q_heads), [&](int h) { forward_head(sh, q, k, v, n, offset, h, out); });
}

void attention_causal_forward(const float* q, const float* k, const float* v, const AttentionSegments& segments,
                              int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* out, Isa isa, ThreadPool& pool,
                              bool bf16, AttentionScores scores) {
  const Shape sh = make_shape(q_heads, kv_heads, head_dim, bf16, scores, isa);
  const int tasks = static_cast<int>(segments.size() * q_heads);
  pool.run(tasks, [&](int task) {
    const auto [t0, len] = segments[task / q_heads];
    forward_head(sh, q + t0 * sh.ldq, k + t0 * sh.ldkv, v + t0 * sh.ldkv, len, 0, task % q_heads, out + t0 * sh.ldq);
  });
}

void attention_causal_backward(const float* q, const float* k, const float* v, const float* dout,
                               const AttentionSegments& segments, int64_t q_heads, int64_t kv_heads, int64_t head_dim,
                               float* dq, float* dk, float* dv, Isa isa, ThreadPool& pool, bool bf16, AttentionScores scores) {
  const Shape sh = make_shape(q_heads, kv_heads, head_dim, bf16, scores, isa);
  int64_t rows = 0;
  for (auto [t0, len] : segments) rows = std::max(rows, t0 + len);
  // With one query head per key/value head each task owns its dk/dv columns; otherwise every query
  // head gets its own slab, summed per group below in head order.
  const bool shared = sh.group > 1;
  // Not zero-filled here (4.7 MB per SmolLM2 layer, serially): each task clears its own rows.
  std::unique_ptr<float[]> slabs(shared ? new float[static_cast<size_t>(2 * q_heads * rows * head_dim)] : nullptr);
  if (!shared) {
    for (int64_t t = 0; t < rows; ++t) std::fill(dk + t * sh.ldkv, dk + (t + 1) * sh.ldkv, 0.0f);
    for (int64_t t = 0; t < rows; ++t) std::fill(dv + t * sh.ldkv, dv + (t + 1) * sh.ldkv, 0.0f);
  }
  const int tasks = static_cast<int>(segments.size() * q_heads);
  pool.run(tasks, [&](int task) {
    const auto [t0, len] = segments[task / q_heads];
    const int64_t h = task % q_heads;
    float *dk_h, *dv_h;
    int64_t ld;
    if (shared) {
      dk_h = slabs.get() + (2 * h) * rows * head_dim + t0 * head_dim;
      dv_h = slabs.get() + (2 * h + 1) * rows * head_dim + t0 * head_dim;
      ld = head_dim;
      std::fill(dk_h, dk_h + len * head_dim, 0.0f);
      std::fill(dv_h, dv_h + len * head_dim, 0.0f);
    } else {
      dk_h = dk + t0 * sh.ldkv + h * head_dim;
      dv_h = dv + t0 * sh.ldkv + h * head_dim;
      ld = sh.ldkv;
    }
    backward_head(sh, q + t0 * sh.ldq, k + t0 * sh.ldkv, v + t0 * sh.ldkv, dout + t0 * sh.ldq, len, h, dq + t0 * sh.ldq,
                  dk_h, dv_h, ld);
  });
  if (!shared) return;
  const int chunks = static_cast<int>(std::min<int64_t>(pool.size(), rows));
  pool.run(chunks, [&](int c) {
    for (int64_t t = rows * c / chunks; t < rows * (c + 1) / chunks; ++t)
      for (int64_t g = 0; g < kv_heads; ++g)
        for (int which = 0; which < 2; ++which) {
          float* dst = (which ? dv : dk) + t * sh.ldkv + g * head_dim;
          auto slab = [&](int64_t h) { return slabs.get() + ((2 * h + which) * rows + t) * head_dim; };
          std::copy(slab(g * sh.group), slab(g * sh.group) + head_dim, dst);
          for (int64_t h = g * sh.group + 1; h < (g + 1) * sh.group; ++h) {
            const float* src = slab(h);
            for (int64_t i = 0; i < head_dim; ++i) dst[i] += src[i];
          }
        }
  });
}

}  // namespace cpu
}  // namespace tk
