#include "../../ops/lora_linear.h"

#include <vector>

#include "../../core/error.h"
#include "lowrank.h"
#include "kernels.h"

namespace tk {
namespace cpu {

namespace {

GemmOperand dense(const float* data, int64_t ld, bool trans) {
  GemmOperand o;
  o.data = data;
  o.ld = ld;
  o.trans = trans;
  return o;
}

GemmOperand frozen(const GemmOperand& w, bool trans) {
  GemmOperand o = w;
  o.trans = trans;
  return o;
}

// drop(X) into `out` (only called when dropout > 0).
void apply_dropout(const LoraLinearArgs& g, const float* x, float* out, ThreadPool& pool) {
  const int64_t n = g.m * g.in;
  const int tasks = pool.size();
  pool.run(tasks, [&](int t) {
    for (int64_t i = n * t / tasks; i < n * (t + 1) / tasks; ++i) out[i] = x[i] * lora_dropout_factor(g.seed, i, g.dropout);
  });
}

// drop(X): X itself without dropout, else a masked copy kept in `storage`.
const float* dropped_input(const LoraLinearArgs& g, std::vector<float>& storage, ThreadPool& pool) {
  if (g.dropout <= 0.0f) return g.x;
  storage.resize(static_cast<size_t>(g.m * g.in));
  apply_dropout(g, g.x, storage.data(), pool);
  return storage.data();
}

// Up to this rank LoRA's thin products run as fp32 row passes (lowrank.h): there they are memory
// traffic, which a GEMM would pad to its 32-column tile. Wider, the bf16 GEMM's arithmetic wins
// (bench/ lora, forward + backward over the frozen linear: r = 8 1.04x with passes, 1.14x with
// GEMMs; r = 64 1.90x with passes, 1.39x with GEMMs).
constexpr int64_t kMaxPassRank = 16;
bool thin_passes(const LoraLinearArgs& g) { return g.r <= kMaxPassRank; }

void check(const LoraLinearArgs& g) {
  check_arg(g.dropout >= 0.0f && g.dropout < 1.0f, "Expected dropout in [0, 1)");
  check_arg(g.r >= 1, "Expected a LoRA rank >= 1");
}

}  // namespace

void lora_linear_forward(const LoraLinearArgs& g, float* y, float* t, Isa isa, ThreadPool& pool) {
  check(g);
  std::vector<float> dropped;
  const float* xd = dropped_input(g, dropped, pool);
  // T = drop(X)·Aᵀ  [m, r]
  if (thin_passes(g)) {
    LowRankPass tp;
    tp.m = g.m, tp.n = g.in, tp.r = g.r;
    tp.y = xd, tp.ldy = g.in;
    tp.w = g.a, tp.d = t;
    lowrank_pass(tp, isa, pool);
  } else {
    GemmArgs ta;
    ta.m = g.m, ta.n = g.r, ta.k = g.in;
    ta.a = dense(xd, g.in, false);
    ta.b = dense(g.a, g.in, true);
    ta.c = t, ta.ldc = g.r, ta.bf16 = g.bf16;
    gemm(ta, isa, pool);
  }
  // Y = [X | s·T]·[W | B]ᵀ
  std::vector<float> ts(t, t + g.m * g.r);
  for (float& v : ts) v *= g.scale;
  GemmArgs ya;
  ya.m = g.m, ya.n = g.out, ya.k = g.in;
  ya.a = dense(g.x, g.in, false);
  ya.a.panels[0] = g.x_panels;
  ya.b = frozen(g.w, !g.w_in_out);
  ya.k2 = g.r;
  ya.a2 = dense(ts.data(), g.r, false);
  ya.b2 = dense(g.b, g.r, true);
  ya.c = y, ya.ldc = g.out, ya.beta = g.accumulate_y ? 1.0f : 0.0f, ya.bf16 = g.bf16;
  gemm(ya, isa, pool);
}

void lora_linear_backward(const LoraLinearArgs& g, const float* dy, const float* t, float* dx, float* da, float* db,
                          Isa isa, ThreadPool& pool) {
  check(g);
  std::vector<float> dt(static_cast<size_t>(g.m * g.r)), dropped;
  const float beta = g.accumulate_grads ? 1.0f : 0.0f;
  if (thin_passes(g)) {
    // dT = s · dY·B  [m, r] and dB = s · dYᵀ·T  [out, r], from one pass over dY.
    std::vector<float> bt(static_cast<size_t>(g.r * g.out));
    for (int64_t o = 0; o < g.out; ++o)
      for (int64_t j = 0; j < g.r; ++j) bt[j * g.out + o] = g.b[o * g.r + j];
    LowRankPass yp;
    yp.m = g.m, yp.n = g.out, yp.r = g.r;
    yp.y = dy, yp.ldy = g.out;
    yp.w = bt.data(), yp.d = dt.data(), yp.alpha_down = g.scale;
    yp.s = t, yp.g = db, yp.g_transposed = true, yp.alpha_up = g.scale, yp.beta = beta;
    lowrank_pass(yp, isa, pool);
    // dA = dTᵀ·drop(X)  [r, in]
    LowRankPass xp;
    xp.m = g.m, xp.n = g.in, xp.r = g.r;
    xp.y = dropped_input(g, dropped, pool), xp.ldy = g.in;
    xp.s = dt.data(), xp.g = da, xp.beta = beta;
    lowrank_pass(xp, isa, pool);
  } else {
    GemmArgs p;  // dT = s · dY·B
    p.m = g.m, p.n = g.r, p.k = g.out;
    p.a = dense(dy, g.out, false), p.b = dense(g.b, g.r, false);
    p.c = dt.data(), p.ldc = g.r, p.alpha = g.scale, p.bf16 = g.bf16;
    gemm(p, isa, pool);
    p = GemmArgs();  // dB = s · dYᵀ·T
    p.m = g.out, p.n = g.r, p.k = g.m;
    p.a = dense(dy, g.out, true), p.b = dense(t, g.r, false);
    p.c = db, p.ldc = g.r, p.alpha = g.scale, p.beta = beta, p.bf16 = g.bf16;
    gemm(p, isa, pool);
    p = GemmArgs();  // dA = dTᵀ·drop(X)
    p.m = g.r, p.n = g.in, p.k = g.m;
    p.a = dense(dt.data(), g.r, true), p.b = dense(dropped_input(g, dropped, pool), g.in, false);
    p.c = da, p.ldc = g.in, p.beta = beta, p.bf16 = g.bf16;
    gemm(p, isa, pool);
  }
  if (!dx) return;
  // dX = dY·W + drop'(dT·A): one product [dY | dT]·[W ; A] without dropout.
  GemmArgs dxa;
  dxa.m = g.m, dxa.n = g.in, dxa.k = g.out;
  dxa.a = dense(dy, g.out, false);
  dxa.b = frozen(g.w, g.w_in_out);
  dxa.c = dx, dxa.ldc = g.in, dxa.beta = g.accumulate_dx ? 1.0f : 0.0f, dxa.bf16 = g.bf16;
  if (g.dropout == 0.0f) {
    dxa.k2 = g.r;
    dxa.a2 = dense(dt.data(), g.r, false);
    dxa.b2 = dense(g.a, g.in, false);
    gemm(dxa, isa, pool);
    return;
  }
  gemm(dxa, isa, pool);
  std::vector<float>& low = dropped;  // reuse: drop'(dT·A) = mask ⊙ (dT·A)
  GemmArgs la;
  la.m = g.m, la.n = g.in, la.k = g.r;
  la.a = dense(dt.data(), g.r, false);
  la.b = dense(g.a, g.in, false);
  la.c = low.data(), la.ldc = g.in, la.bf16 = g.bf16;
  gemm(la, isa, pool);
  const int64_t n = g.m * g.in;
  for (int64_t i = 0; i < n; ++i) dx[i] += low[i] * lora_dropout_factor(g.seed, i, g.dropout);
}

}  // namespace cpu
}  // namespace tk
