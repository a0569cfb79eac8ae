#include "adamw.h"

#include <cmath>

namespace tk {

void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& c, int64_t t) {
  const float decay = 1.0f - c.lr * c.weight_decay;
  const double bc1 = 1.0 - std::pow(static_cast<double>(c.beta1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(c.beta2), static_cast<double>(t));
  const float step_size = static_cast<float>(c.lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  for (int64_t i = 0; i < n; ++i) {
    p[i] *= decay;
    m[i] += (g[i] - m[i]) * (1.0f - c.beta1);  // lerp, as torch's exp_avg.lerp_(grad, 1 - beta1)
    v[i] = v[i] * c.beta2 + (1.0f - c.beta2) * g[i] * g[i];
    const float denom = std::sqrt(v[i]) / bc2_sqrt + c.eps;
    p[i] -= step_size * m[i] / denom;
  }
}

double sum_of_squares(const float* g, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(g[i]) * g[i];
  return s;
}

}  // namespace tk
