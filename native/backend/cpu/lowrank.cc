#include "lowrank.h"

#include <algorithm>
#include <vector>

#include "../../core/error.h"
#include "kernels.h"

namespace tk {
namespace cpu {

void lowrank_rows_scalar(const float* y, int64_t ldy, int64_t rows, int64_t n, int64_t rp, const float* w, float* d,
                         const float* s, float* gp) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* yi = y + i * ldy;
    if (w)
      for (int64_t j = 0; j < rp; ++j) {
        const float* wj = w + j * n;
        float sum = 0.0f;
        for (int64_t c = 0; c < n; ++c) sum += yi[c] * wj[c];
        d[i * rp + j] = sum;
      }
    if (s)
      for (int64_t j = 0; j < rp; ++j) {
        const float sij = s[i * rp + j];
        float* gj = gp + j * n;
        for (int64_t c = 0; c < n; ++c) gj[c] += sij * yi[c];
      }
  }
}

namespace {

int64_t round8(int64_t x) { return (x + 7) / 8 * 8; }

LowRankRowsKernel rows_kernel(Isa isa) {
#if defined(__x86_64__) || defined(_M_X64)
  if (isa >= Isa::Avx512) return lowrank_rows_avx512;
  if (isa >= Isa::Avx2) return lowrank_rows_avx2;
#else
  (void)isa;
#endif
  return lowrank_rows_scalar;
}

}  // namespace

void lowrank_pass(const LowRankPass& p, Isa isa, ThreadPool& pool) {
  check_arg(p.r >= 1 && p.m >= 0 && p.n >= 0 && p.ldy >= p.n, "Expected lowrank_pass shapes with r >= 1 and ldy >= n");
  const bool down = p.w != nullptr, up = p.s != nullptr;
  const int64_t m = p.m, n = p.n, r = p.r, rp = round8(r);
  // Padded copies (zero rows/columns up to rp) so the kernels work in whole groups of eight.
  std::vector<float> wp(down ? static_cast<size_t>(rp * n) : 0, 0.0f), sp(up ? static_cast<size_t>(m * rp) : 0, 0.0f);
  if (down) std::copy(p.w, p.w + r * n, wp.begin());
  if (up)
    for (int64_t i = 0; i < m; ++i) std::copy(p.s + i * r, p.s + (i + 1) * r, sp.begin() + i * rp);
  std::vector<float> dp(down ? static_cast<size_t>(m * rp) : 0);
  const LowRankRowsKernel kernel = rows_kernel(isa);
  const int tasks = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(pool.size(), m * n * rp < (1 << 16) ? 1 : m / 8)));
  std::vector<float> partial(up ? static_cast<size_t>(tasks * rp * n) : 0, 0.0f);
  pool.run(tasks, [&](int t) {
    const int64_t i0 = m * t / tasks, i1 = m * (t + 1) / tasks;
    kernel(p.y + i0 * p.ldy, p.ldy, i1 - i0, n, rp, down ? wp.data() : nullptr, down ? dp.data() + i0 * rp : nullptr,
           up ? sp.data() + i0 * rp : nullptr, up ? partial.data() + t * rp * n : nullptr);
  });
  if (down)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < r; ++j) p.d[i * r + j] = p.alpha_down * dp[i * rp + j];
  if (!up) return;
  for (int64_t j = 0; j < r; ++j)
    for (int64_t c = 0; c < n; ++c) {
      float sum = 0.0f;
      for (int t = 0; t < tasks; ++t) sum += partial[(t * rp + j) * n + c];
      float& out = p.g_transposed ? p.g[c * r + j] : p.g[j * n + c];
      out = p.alpha_up * sum + (p.beta == 0.0f ? 0.0f : p.beta * out);
    }
}

void lowrank_pass_reference(const LowRankPass& p) {
  for (int64_t i = 0; p.w && i < p.m; ++i)
    for (int64_t j = 0; j < p.r; ++j) {
      double sum = 0.0;
      for (int64_t c = 0; c < p.n; ++c) sum += static_cast<double>(p.y[i * p.ldy + c]) * p.w[j * p.n + c];
      p.d[i * p.r + j] = static_cast<float>(p.alpha_down * sum);
    }
  for (int64_t j = 0; p.s && j < p.r; ++j)
    for (int64_t c = 0; c < p.n; ++c) {
      double sum = 0.0;
      for (int64_t i = 0; i < p.m; ++i) sum += static_cast<double>(p.s[i * p.r + j]) * p.y[i * p.ldy + c];
      float& out = p.g_transposed ? p.g[c * p.r + j] : p.g[j * p.n + c];
      out = static_cast<float>(p.alpha_up * sum + (p.beta == 0.0f ? 0.0 : static_cast<double>(p.beta) * out));
    }
}

}  // namespace cpu
}  // namespace tk
