// The CPU's AdamW step and sums of squares (optim/adamw.h), element-wise across the pool.
#include "../../optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "fp64_sum.h"
#include "kernels.h"

namespace tk {
namespace cpu {

namespace {

void adamw_range(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& c, float decay,
                 float step_size, float bc2_sqrt, float grad_scale) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * grad_scale;
    p[i] *= decay;
    m[i] += (gi - m[i]) * (1.0f - c.beta1);  // lerp, as torch's exp_avg.lerp_(grad, 1 - beta1)
    v[i] = v[i] * c.beta2 + (1.0f - c.beta2) * gi * gi;
    const float denom = std::sqrt(v[i]) / bc2_sqrt + c.eps;
    p[i] -= step_size * m[i] / denom;
  }
}

constexpr int64_t kChunk = int64_t{1} << 16;

}  // namespace

void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& c, int64_t t,
                ThreadPool* pool, float grad_scale) {
  const float decay = 1.0f - c.lr * c.weight_decay;
  const double bc1 = 1.0 - std::pow(static_cast<double>(c.beta1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(c.beta2), static_cast<double>(t));
  const float step_size = static_cast<float>(c.lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const int tasks = pool && n >= kChunk ? pool->size() : 1;
  auto run = [&](int task) {
    const int64_t i0 = n * task / tasks, i1 = n * (task + 1) / tasks;
    adamw_range(p + i0, g + i0, m + i0, v + i0, i1 - i0, c, decay, step_size, bc2_sqrt, grad_scale);
  };
  if (tasks == 1) return run(0);
  pool->run(tasks, run);
}

void sum_squares_chunks(const float* g, int64_t n, int64_t chunk, double* partials, ThreadPool* pool) {
  const int64_t chunks = (n + chunk - 1) / chunk;
  auto run = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) partials[c] = dot_f64(g + c * chunk, g + c * chunk, nullptr, std::min(chunk, n - c * chunk));
  };
  const int tasks = pool && chunks > 1 ? static_cast<int>(std::min<int64_t>(pool->size(), chunks)) : 1;
  if (tasks == 1) run(0, chunks);
  else pool->run(tasks, [&](int t) { run(chunks * t / tasks, chunks * (t + 1) / tasks); });
}

}  // namespace cpu
}  // namespace tk
