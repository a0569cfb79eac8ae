#include "../../ops/classifier_head.h"

#include <algorithm>
#include <cmath>
#include "kernels.h"

namespace tk {
namespace cpu {
namespace {

int64_t length_of(const int32_t* lengths, int64_t b, int64_t seq) {
  return lengths ? std::clamp<int64_t>(lengths[b], 1, seq) : seq;
}

// y [rows, out] = x [rows, in] · Wᵀ + bias
void linear(const float* x, const float* w, const float* bias, int64_t rows, int64_t in, int64_t out, float* y) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = bias[o];
      for (int64_t i = 0; i < in; ++i) s += static_cast<double>(x[r * in + i]) * w[o * in + i];
      y[r * out + o] = static_cast<float>(s);
    }
}

// dW += dyᵀ·x, db += Σ dy, dx = dy·W (dx may be null).
void linear_back(const float* x, const float* w, const float* dy, int64_t rows, int64_t in, int64_t out, float* dw, float* db,
                 float* dx) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      const float g = dy[r * out + o];
      if (g == 0.0f) continue;
      db[o] += g;
      for (int64_t i = 0; i < in; ++i) dw[o * in + i] += g * x[r * in + i];
    }
  if (!dx) return;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < in; ++i) {
      double s = 0;
      for (int64_t o = 0; o < out; ++o) s += static_cast<double>(dy[r * out + o]) * w[o * in + i];
      dx[r * in + i] = static_cast<float>(s);
    }
}

}  // namespace

void classifier_pool(bool mean_pool, const float* hidden, int64_t batch, int64_t seq, int64_t dim, const int32_t* lengths,
                     float* out) {
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t len = length_of(lengths, b, seq);
    float* o = out + b * dim;
    if (!mean_pool) {
      std::copy(hidden + (b * seq + len - 1) * dim, hidden + (b * seq + len) * dim, o);
      continue;
    }
    for (int64_t i = 0; i < dim; ++i) {
      double s = 0;
      for (int64_t t = 0; t < len; ++t) s += hidden[(b * seq + t) * dim + i];
      o[i] = static_cast<float>(s / static_cast<double>(len));
    }
  }
}

CrossEntropyResult classifier_head_step(const ClassifierHead& h, const float* params, float* grads, const float* hidden,
                                        int64_t batch, int64_t seq, const int32_t* lengths, const int32_t* labels,
                                        float* logits_out, float* dhidden, ThreadPool& pool) {
  const int64_t dim = h.dim, rows = h.token_level ? batch * seq : batch;
  // Input rows of the head: every token, or one pooled row per sequence.
  std::vector<float> pooled;
  const float* x = hidden;
  if (!h.token_level) {
    pooled.resize(static_cast<size_t>(batch * dim));
    classifier_pool(h.mean_pool, hidden, batch, seq, dim, lengths, pooled.data());
    x = pooled.data();
  }
  const bool mlp = h.hidden > 0;
  const int64_t mid = mlp ? h.hidden : 0;
  std::vector<float> z, a, logits(static_cast<size_t>(rows * h.classes));
  if (mlp) {
    z.resize(static_cast<size_t>(rows * mid));
    linear(x, params + h.w1, params + h.b1, rows, dim, mid, z.data());
    a.resize(z.size());
    for (size_t i = 0; i < z.size(); ++i) a[i] = std::tanh(z[i]);
    linear(a.data(), params + h.w2, params + h.b2, rows, mid, h.classes, logits.data());
  } else {
    linear(x, params + h.w1, params + h.b1, rows, dim, h.classes, logits.data());
  }
  if (logits_out) std::copy(logits.begin(), logits.end(), logits_out);
  const CrossEntropyResult ce = cross_entropy(logits.data(), labels, rows, h.classes, dhidden != nullptr, 1.0f, pool, Isa::Scalar);
  if (!dhidden || ce.count == 0) return ce;
  // logits now hold d(summed loss)/d(logits).
  std::vector<float> dx(static_cast<size_t>(rows * dim));
  if (mlp) {
    std::vector<float> da(a.size());
    linear_back(a.data(), params + h.w2, logits.data(), rows, mid, h.classes, grads + h.w2, grads + h.b2, da.data());
    for (size_t i = 0; i < da.size(); ++i) da[i] *= 1.0f - a[i] * a[i];  // tanh'
    linear_back(x, params + h.w1, da.data(), rows, dim, mid, grads + h.w1, grads + h.b1, dx.data());
  } else {
    linear_back(x, params + h.w1, logits.data(), rows, dim, h.classes, grads + h.w1, grads + h.b1, dx.data());
  }
  if (h.token_level) {
    std::copy(dx.begin(), dx.end(), dhidden);
    return ce;
  }
  for (int64_t b = 0; b < batch; ++b) {  // back through the pooling
    const int64_t len = length_of(lengths, b, seq);
    const float* g = dx.data() + b * dim;
    if (!h.mean_pool) {
      std::copy(g, g + dim, dhidden + (b * seq + len - 1) * dim);
      continue;
    }
    for (int64_t t = 0; t < len; ++t)
      for (int64_t i = 0; i < dim; ++i) dhidden[(b * seq + t) * dim + i] = g[i] / static_cast<float>(len);
  }
  return ce;
}

}  // namespace cpu
}  // namespace tk
