#include "../../ops/attention.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "fp64_sum.h"
#include "vexp.h"
#include "../../ops/gemm.h"
#include "kernels.h"

namespace tk {
namespace cpu {

namespace {

constexpr int64_t kQueryBlock = 64;
// Keys per tile, forward and backward: a tile's P and dP (64 x 256 fp32, 64 KB each) and its rows
// of dK and dV stay in a 512 KB L2; whole rows of P and dP (1 MB each at 4096 tokens) did not.
constexpr int64_t kKeyTile = 256;

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

// Packed B for a product: panels (or none) and where in their op(B) the product's part starts.
struct PanelTile {
  const GemmPanels* panels = nullptr;
  int64_t k0 = 0, n0 = 0;
};

// C = alpha · op(A)·op(B) + beta · C on strided row-major views, on the calling thread alone.
void head_gemm(const Shape& sh, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool ta, const float* b,
               int64_t ldb, bool tb, float* c, int64_t ldc, float alpha, float beta, PanelTile panels = {}) {
  thread_local ThreadPool serial(1);
  GemmArgs g;
  g.m = m, g.n = n, g.k = k;
  g.a.data = a, g.a.ld = lda, g.a.trans = ta;
  g.b.data = b, g.b.ld = ldb, g.b.trans = tb;
  g.b.panels[tb ? 1 : 0] = panels.panels;
  g.b.panel_k0 = panels.k0, g.b.panel_n0 = panels.n0;
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
// lse (may be null): each row's log Σ exp of its (capped) scores, at lse[t · lse_stride].
void block_softmax(const Shape& sh, const Block& b, int64_t offset, float* s, float* tanh_out, float* lse,
                   int64_t lse_stride) {
  for (int64_t t = 0; t < b.rows; ++t) {
    float* row = s + t * b.nk;
    const int64_t p = offset + b.i0 + t, lo = first_key(p, sh.window) - b.j0, hi = p - b.j0;
    if (sh.softcap > 0) softcap_row(row + lo, hi - lo + 1, sh.softcap, tanh_out ? tanh_out + t * b.nk + lo : nullptr, sh.isa);
    const float max = max_of(row + lo, hi - lo + 1, sh.isa);
    const double sum = exp_shifted_sum(row + lo, max, hi - lo + 1, row + lo, sh.isa);
    if (lse) lse[t * lse_stride] = max + std::log(static_cast<float>(sum));
    std::fill(row, row + lo, 0.0f);
    scale_in_place(row + lo, hi - lo + 1, static_cast<float>(1.0 / sum), sh.isa);
    std::fill(row + hi + 1, row + b.nk, 0.0f);
  }
}

// A head's keys or values packed once for the bf16 products of all its query blocks (as Kᵀ, K,
// Vᵀ or V); none without bf16.
std::unique_ptr<GemmPanels> head_panels(const Shape& sh, const float* x, int64_t n, bool trans) {
  if (!sh.bf16) return nullptr;
  return trans ? gemm_pack_dense_panels(x, sh.ldkv, true, sh.head_dim, n, sh.isa)
               : gemm_pack_dense_panels(x, sh.ldkv, false, n, sh.head_dim, sh.isa);
}

// Of a key tile [j, j + nt), the keys [j + lo, j + hi] that the query at position pos sees (lo > hi:
// none).
struct Seen {
  int64_t lo, hi;
};

Seen seen_in_tile(const Shape& sh, int64_t pos, int64_t j, int64_t nt) {
  return {std::max<int64_t>(first_key(pos, sh.window) - j, 0), std::min(pos - j, nt - 1)};
}

// A block whose keys span several tiles, with an online softmax (FlashAttention's forward): each
// tile's scores are exponentiated against the row's running maximum, and what the earlier tiles put
// in the output row is rescaled when that maximum grows; the row is divided by Σ exp at the end. So
// no whole row of scores (1 MB per block at 4096 tokens, past a 512 KB L2) is formed.
void forward_block_tiled(const Shape& sh, const Block& b, int64_t offset, const float* qh, const float* kg,
                         const float* vg, const GemmPanels* kt, const GemmPanels* vn, float* p, float* o, float* lse) {
  const int64_t hd = sh.head_dim, tile = kKeyTile;
  float max[kQueryBlock];
  double sum[kQueryBlock];
  std::fill(max, max + b.rows, -INFINITY), std::fill(sum, sum + b.rows, 0.0);
  for (int64_t j = b.j0; j < b.j0 + b.nk; j += tile) {
    const int64_t nt = std::min(tile, b.j0 + b.nk - j);
    head_gemm(sh, b.rows, nt, hd, qh + b.i0 * sh.ldq, sh.ldq, false, kg + j * sh.ldkv, sh.ldkv, true, p, nt, sh.scale,
              0.0f, {kt, 0, j});
    for (int64_t t = 0; t < b.rows; ++t) {
      float* row = p + t * nt;
      const Seen s = seen_in_tile(sh, offset + b.i0 + t, j, nt);
      if (s.hi < s.lo) {  // sees none of this tile: adds nothing, keeps its statistics
        std::fill(row, row + nt, 0.0f);
        continue;
      }
      const int64_t len = s.hi - s.lo + 1;
      if (sh.softcap > 0) softcap_row(row + s.lo, len, sh.softcap, nullptr, sh.isa);
      const float grown = std::max(max[t], max_of(row + s.lo, len, sh.isa));
      // What earlier tiles added was weighted by exp(score − the old maximum).
      if (grown > max[t] && sum[t] > 0) {
        const float rescale = std::exp(max[t] - grown);
        scale_in_place(o + t * sh.ldq, hd, rescale, sh.isa);
        sum[t] *= rescale;
      }
      max[t] = grown;
      sum[t] += exp_shifted_sum(row + s.lo, grown, len, row + s.lo, sh.isa);
      std::fill(row, row + s.lo, 0.0f), std::fill(row + s.hi + 1, row + nt, 0.0f);
    }
    // out_block (+)= P_tile · V_tile; the first tile overwrites (rows that saw none of it get 0).
    head_gemm(sh, b.rows, hd, nt, p, nt, false, vg + j * sh.ldkv, sh.ldkv, false, o, sh.ldq, 1.0f,
              j == b.j0 ? 0.0f : 1.0f, {vn, j, 0});
  }
  for (int64_t t = 0; t < b.rows; ++t) {
    scale_in_place(o + t * sh.ldq, hd, static_cast<float>(1.0 / sum[t]), sh.isa);
    if (lse) lse[t * sh.q_heads] = max[t] + std::log(static_cast<float>(sum[t]));
  }
}

void forward_head(const Shape& sh, const float* q, const float* k, const float* v, int64_t n, int64_t offset, int64_t h,
                  float* out, float* lse) {
  const int64_t g = h / sh.group;
  const float *qh = q + h * sh.head_dim, *kg = k + g * sh.head_dim, *vg = v + g * sh.head_dim;
  // A block's scores: its whole row when that fits one key tile, else one tile at a time.
  std::vector<float> p(static_cast<size_t>(std::min(kQueryBlock, n) * std::min(kKeyTile, offset + n)));
  // One block: nothing to share; with a window, blocks start mid-panel.
  const bool blocks = n > kQueryBlock && sh.window == 0;
  const auto kt = blocks ? head_panels(sh, kg, offset + n, true) : nullptr, vn = blocks ? head_panels(sh, vg, offset + n, false) : nullptr;
  for (int64_t i0 = 0; i0 < n; i0 += kQueryBlock) {
    const Block b = query_block(i0, n, offset, sh.window);
    float *o = out + i0 * sh.ldq + h * sh.head_dim, *lse_b = lse ? lse + i0 * sh.q_heads + h : nullptr;
    if (b.nk > kKeyTile) {
      forward_block_tiled(sh, b, offset, qh, kg, vg, kt.get(), vn.get(), p.data(), o, lse_b);
      continue;
    }
    // P = softmax([softcap] scale · Q_block · K_keysᵀ), then out = P · V_keys.
    head_gemm(sh, b.rows, b.nk, sh.head_dim, qh + i0 * sh.ldq, sh.ldq, false, kg + b.j0 * sh.ldkv, sh.ldkv, true, p.data(),
              b.nk, sh.scale, 0.0f, {kt.get()});
    block_softmax(sh, b, offset, p.data(), nullptr, lse_b, sh.q_heads);
    head_gemm(sh, b.rows, sh.head_dim, b.nk, p.data(), b.nk, false, vg + b.j0 * sh.ldkv, sh.ldkv, false, o, sh.ldq, 1.0f,
              0.0f, {vn.get()});
  }
}

// One head of one sequence: writes dq's columns of head h, adds into dk_h / dv_h (row stride ld,
// zeroed by the caller) this head's share of its key/value head's gradients. Each block of queries
// goes over its keys in tiles: P of a tile is exp(score − the forward's log Σ exp), exact without
// the rest of the row, and the softmax backward's row sum Σ P·dP is dO·O.
void backward_head(const Shape& sh, const float* q, const float* k, const float* v, const float* out, const float* lse,
                   const float* dout, int64_t n, int64_t h, float* dq, float* dk_h, float* dv_h, int64_t ld) {
  const int64_t g = h / sh.group, hd = sh.head_dim;
  const float *qh = q + h * hd, *kg = k + g * hd, *vg = v + g * hd, *doh = dout + h * hd, *oh = out + h * hd;
  const int64_t tile = std::min(kKeyTile, n);
  const size_t tile_floats = static_cast<size_t>(std::min(kQueryBlock, n) * tile);
  std::vector<float> p(tile_floats), dp(tile_floats), tanh(sh.softcap > 0 ? tile_floats : 0), dot(kQueryBlock);
  // Tiles start at multiples of kKeyTile without a window, so they can read a head's panels.
  const bool panels = n > kQueryBlock && sh.window == 0;
  const auto kt = panels ? head_panels(sh, kg, n, true) : nullptr, kn = panels ? head_panels(sh, kg, n, false) : nullptr;
  const auto vt = panels ? head_panels(sh, vg, n, true) : nullptr;
  for (int64_t i0 = 0; i0 < n; i0 += kQueryBlock) {
    const Block b = query_block(i0, n, 0, sh.window);
    // One tile holds the whole row: Σ P·dP from the tile itself, without reading O.
    const bool one_tile = b.nk <= tile;
    if (!one_tile)
      for (int64_t t = 0; t < b.rows; ++t)
        dot[t] = static_cast<float>(dot_f64(doh + (i0 + t) * sh.ldq, oh + (i0 + t) * sh.ldq, nullptr, hd));
    for (int64_t j = b.j0; j < b.j0 + b.nk; j += tile) {
      const int64_t nt = std::min(tile, b.j0 + b.nk - j);
      // S = scale · Q_block · K_tileᵀ, then P in place (a row's keys outside what it sees: 0).
      head_gemm(sh, b.rows, nt, hd, qh + i0 * sh.ldq, sh.ldq, false, kg + j * sh.ldkv, sh.ldkv, true, p.data(), nt,
                sh.scale, 0.0f, {kt.get(), 0, j});
      // dP = dO·V_tileᵀ
      head_gemm(sh, b.rows, nt, hd, doh + i0 * sh.ldq, sh.ldq, false, vg + j * sh.ldkv, sh.ldkv, true, dp.data(), nt, 1.0f,
                0.0f, {vt.get(), 0, j});
      for (int64_t t = 0; t < b.rows; ++t) {
        float *pr = p.data() + t * nt, *dr = dp.data() + t * nt;
        const int64_t pos = i0 + t;
        auto [lo, hi] = seen_in_tile(sh, pos, j, nt);
        if (hi >= lo) {
          float* th = tanh.empty() ? nullptr : tanh.data() + t * nt;
          if (th) softcap_row(pr + lo, hi - lo + 1, sh.softcap, th + lo, sh.isa);
          exp_shifted_sum(pr + lo, lse[pos * sh.q_heads + h], hi - lo + 1, pr + lo, sh.isa);
          // dS = P ⊙ (dP − Σ P·dP), times the score scale; through the cap, times 1 − tanh².
          softmax_backward_row(pr + lo, dr + lo, hi - lo + 1, sh.scale, one_tile ? nullptr : &dot[t], sh.isa);
          if (th)
            for (int64_t c = lo; c <= hi; ++c) dr[c] *= 1.0f - th[c] * th[c];
        } else {
          lo = nt, hi = nt - 1;  // the row sees none of this tile: all of it becomes 0 below
        }
        std::fill(pr, pr + lo, 0.0f), std::fill(dr, dr + lo, 0.0f);
        std::fill(pr + hi + 1, pr + nt, 0.0f), std::fill(dr + hi + 1, dr + nt, 0.0f);
      }
      head_gemm(sh, b.rows, hd, nt, dp.data(), nt, false, kg + j * sh.ldkv, sh.ldkv, false, dq + i0 * sh.ldq + h * hd,
                sh.ldq, 1.0f, j == b.j0 ? 0.0f : 1.0f, {kn.get(), j, 0});
      head_gemm(sh, nt, hd, b.rows, dp.data(), nt, true, qh + i0 * sh.ldq, sh.ldq, false, dk_h + j * ld, ld, 1.0f, 1.0f);
      head_gemm(sh, nt, hd, b.rows, p.data(), nt, true, doh + i0 * sh.ldq, sh.ldq, false, dv_h + j * ld, ld, 1.0f, 1.0f);
    }
  }
}

}  // namespace

void attention_causal_forward(const float* q, const float* k, const float* v, int64_t n, int64_t offset,
                              int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* out, Isa isa, ThreadPool& pool,
                              bool bf16, AttentionScores scores) {
  const Shape sh = make_shape(q_heads, kv_heads, head_dim, bf16, scores, isa);
  pool.run(static_cast<int>(q_heads), [&](int h) { forward_head(sh, q, k, v, n, offset, h, out, nullptr); });
}

void attention_causal_forward(const float* q, const float* k, const float* v, const AttentionSegments& segments,
                              int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* out, float* lse, Isa isa,
                              ThreadPool& pool, bool bf16, AttentionScores scores) {
  const Shape sh = make_shape(q_heads, kv_heads, head_dim, bf16, scores, isa);
  const int tasks = static_cast<int>(segments.size() * q_heads);
  pool.run(tasks, [&](int task) {
    const auto [t0, len] = segments[task / q_heads];
    forward_head(sh, q + t0 * sh.ldq, k + t0 * sh.ldkv, v + t0 * sh.ldkv, len, 0, task % q_heads, out + t0 * sh.ldq,
                 lse ? lse + t0 * q_heads : nullptr);
  });
}

void attention_causal_backward(const float* q, const float* k, const float* v, const float* out, const float* lse,
                               const float* dout, const AttentionSegments& segments, int64_t q_heads, int64_t kv_heads,
                               int64_t head_dim, float* dq, float* dk, float* dv, Isa isa, ThreadPool& pool, bool bf16, AttentionScores scores) {
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
    backward_head(sh, q + t0 * sh.ldq, k + t0 * sh.ldkv, v + t0 * sh.ldkv, out + t0 * sh.ldq, lse + t0 * q_heads,
                  dout + t0 * sh.ldq, len, h, dq + t0 * sh.ldq, dk_h, dv_h, ld);
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
