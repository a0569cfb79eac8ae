// Classification heads on the GPU run the CPU's op (backend/cpu/classifier_head.cc) on host copies.
// Why: a head is dim x classes (a few thousand weights) and one row per sequence; copying the
// pooled rows and the head's slice of the parameters costs microseconds, and one implementation
// of the pooling, the MLP and its gradients keeps both backends equal by construction.
#include <algorithm>
#include <vector>

#include "../cpu/kernels.h"
#include "cuda_context.cuh"
#include "kernels.cuh"

namespace tk {
namespace cuda {
namespace {

// The head's parameters are appended together (model/trainable.cc): [first, end) covers them.
void head_range(const ClassifierHead& h, int64_t& first, int64_t& end) {
  const int64_t out1 = h.hidden > 0 ? h.hidden : h.classes;
  first = std::min(h.w1, h.b1), end = std::max(h.w1 + out1 * h.dim, h.b1 + out1);
  if (h.w2 >= 0) first = std::min({first, h.w2, h.b2}), end = std::max({end, h.w2 + h.classes * h.hidden, h.b2 + h.classes});
}

int64_t token_rows(int64_t batch, int64_t seq) { return batch * seq; }

}  // namespace

CrossEntropyResult classifier_head_step(const ExecContext& x, const ClassifierHead& head, const float* params, float* grads,
                                        const float* hidden, int64_t batch, int64_t seq, const int32_t* lengths,
                                        const int32_t* labels, float* logits, float* dhidden) {
  CudaBackend& b = backend_of(x);
  int64_t first = 0, end = 0;
  head_range(head, first, end);
  ClassifierHead h = head;  // offsets into the host copies
  h.w1 -= first, h.b1 -= first;
  if (h.w2 >= 0) h.w2 -= first, h.b2 -= first;
  const int64_t rows = token_rows(batch, seq), n = end - first;
  std::vector<float> p(static_cast<size_t>(n)), g(static_cast<size_t>(grads ? n : 0)), hid(static_cast<size_t>(rows * head.dim)),
      dh(static_cast<size_t>(dhidden ? rows * head.dim : 0));
  b.copy_to_host(p.data(), params + first, p.size() * 4);
  if (grads) b.copy_to_host(g.data(), grads + first, g.size() * 4);
  b.copy_to_host(hid.data(), hidden, hid.size() * 4);
  const CrossEntropyResult r = cpu::classifier_head_step(h, p.data(), grads ? g.data() : nullptr, hid.data(), batch, seq, lengths,
                                                         labels, logits, dhidden ? dh.data() : nullptr, *x.pool);
  if (grads) b.copy_to_device(grads + first, g.data(), g.size() * 4);
  if (dhidden) b.copy_to_device(dhidden, dh.data(), dh.size() * 4);
  b.synchronize();
  return r;
}

void classifier_pool(const ExecContext& x, bool mean_pool, const float* hidden, int64_t batch, int64_t seq, int64_t dim,
                     const int32_t* lengths, float* out) {
  CudaBackend& b = backend_of(x);
  std::vector<float> hid(static_cast<size_t>(token_rows(batch, seq) * dim)), pooled(static_cast<size_t>(batch * dim));
  b.copy_to_host(hid.data(), hidden, hid.size() * 4);
  cpu::classifier_pool(mean_pool, hid.data(), batch, seq, dim, lengths, pooled.data());
  b.copy_to_device(out, pooled.data(), pooled.size() * 4);
  b.synchronize();
}

}  // namespace cuda
}  // namespace tk
