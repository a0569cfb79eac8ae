#include "attention.h"

#include <cmath>
#include <vector>

namespace tk {

void attention_causal_forward(const float* q, const float* k, const float* v, int64_t n, int64_t offset,
                              int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* out, ThreadPool& pool) {
  const int64_t group = q_heads / kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const int tasks = static_cast<int>(q_heads < pool.size() ? q_heads : pool.size());
  pool.run(tasks, [&](int task) {
    std::vector<float> p(static_cast<size_t>(offset + n));
    for (int64_t h = q_heads * task / tasks; h < q_heads * (task + 1) / tasks; ++h) {
      const int64_t g = h / group;
      for (int64_t t = 0; t < n; ++t) {
        const float* qt = q + (t * q_heads + h) * head_dim;
        const int64_t last = offset + t;  // this query's absolute position
        float max = -INFINITY;
        for (int64_t s = 0; s <= last; ++s) {
          const float* ks = k + (s * kv_heads + g) * head_dim;
          float dot = 0.0f;
          for (int64_t i = 0; i < head_dim; ++i) dot += qt[i] * ks[i];
          p[s] = dot * scale;
          max = p[s] > max ? p[s] : max;
        }
        double sum = 0.0;
        for (int64_t s = 0; s <= last; ++s) sum += (p[s] = std::exp(p[s] - max));
        const float inv = static_cast<float>(1.0 / sum);
        float* ot = out + (t * q_heads + h) * head_dim;
        for (int64_t i = 0; i < head_dim; ++i) ot[i] = 0.0f;
        for (int64_t s = 0; s <= last; ++s) {
          const float w = p[s] * inv;
          const float* vs = v + (s * kv_heads + g) * head_dim;
          for (int64_t i = 0; i < head_dim; ++i) ot[i] += w * vs[i];
        }
      }
    }
  });
}

void attention_causal_backward(const float* q, const float* k, const float* v, const float* dout, int64_t n,
                               int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* dq, float* dk, float* dv,
                               ThreadPool& pool) {
  const int64_t group = q_heads / kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const int tasks = static_cast<int>(kv_heads < pool.size() ? kv_heads : pool.size());
  pool.run(tasks, [&](int task) {
    std::vector<float> p(static_cast<size_t>(n)), dp(static_cast<size_t>(n));
    for (int64_t g = kv_heads * task / tasks; g < kv_heads * (task + 1) / tasks; ++g) {
      for (int64_t s = 0; s < n; ++s)
        for (int64_t i = 0; i < head_dim; ++i) dk[(s * kv_heads + g) * head_dim + i] = dv[(s * kv_heads + g) * head_dim + i] = 0.0f;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        for (int64_t t = 0; t < n; ++t) {
          const float* qt = q + (t * q_heads + h) * head_dim;
          const float* dot_ = dout + (t * q_heads + h) * head_dim;
          float max = -INFINITY;
          for (int64_t s = 0; s <= t; ++s) {
            const float* ks = k + (s * kv_heads + g) * head_dim;
            float dot = 0.0f;
            for (int64_t i = 0; i < head_dim; ++i) dot += qt[i] * ks[i];
            p[s] = dot * scale;
            max = p[s] > max ? p[s] : max;
          }
          double sum = 0.0;
          for (int64_t s = 0; s <= t; ++s) sum += (p[s] = std::exp(p[s] - max));
          const float inv = static_cast<float>(1.0 / sum);
          double d = 0.0;  // rowsum(dO ⊙ O) = Σ_s p_s (dO · v_s)
          for (int64_t s = 0; s <= t; ++s) {
            p[s] *= inv;
            const float* vs = v + (s * kv_heads + g) * head_dim;
            float acc = 0.0f;
            for (int64_t i = 0; i < head_dim; ++i) acc += dot_[i] * vs[i];
            dp[s] = acc;
            d += static_cast<double>(p[s]) * acc;
          }
          float* dqt = dq + (t * q_heads + h) * head_dim;
          for (int64_t i = 0; i < head_dim; ++i) dqt[i] = 0.0f;
          for (int64_t s = 0; s <= t; ++s) {
            const float ds = p[s] * (dp[s] - static_cast<float>(d)) * scale;
            const float* ks = k + (s * kv_heads + g) * head_dim;
            float* dks = dk + (s * kv_heads + g) * head_dim;
            float* dvs = dv + (s * kv_heads + g) * head_dim;
            for (int64_t i = 0; i < head_dim; ++i) {
              dqt[i] += ds * ks[i];
              dks[i] += ds * qt[i];
              dvs[i] += p[s] * dot_[i];
            }
          }
        }
      }
    }
  });
}

}  // namespace tk
