#include "../../ops/cross_entropy.h"

#include <cmath>
#include <vector>

#include "vexp.h"
#include "kernels.h"

namespace tk {
namespace cpu {

CrossEntropyResult cross_entropy(float* logits, const int32_t* labels, int64_t rows, int64_t vocab, bool grad, float grad_scale,
                                 ThreadPool& pool, Isa isa) {
  CrossEntropyResult result;
  for (int64_t r = 0; r < rows; ++r) result.count += labels[r] != kIgnoreIndex;
  std::vector<double> row_loss(static_cast<size_t>(rows), 0.0);
  const double inv_count = result.count ? 1.0 / static_cast<double>(result.count) : 0.0;
  const double grad_coef = grad_scale;
  const int tasks = static_cast<int>(rows < pool.size() ? (rows < 1 ? 1 : rows) : pool.size());
  pool.run(tasks, [&](int t) {
    std::vector<float> scratch(grad ? 0 : static_cast<size_t>(vocab));  // the logits stay as they are without a gradient
    for (int64_t r = rows * t / tasks; r < rows * (t + 1) / tasks; ++r) {
      float* row = logits + r * vocab;
      if (labels[r] == kIgnoreIndex) {
        if (grad)
          for (int64_t i = 0; i < vocab; ++i) row[i] = 0.0f;
        continue;
      }
      const float max = max_of(row, vocab, isa);
      const float target = row[labels[r]];
      // One fp32 exp per element (kept for the gradient), summed in fp64.
      const double sum = exp_shifted_sum(row, max, vocab, grad ? row : scratch.data(), isa);
      const double lse = max + std::log(sum);
      row_loss[r] = lse - target;
      if (grad) {
        const float k = static_cast<float>(grad_coef / sum);  // softmax · scale
        scale_in_place(row, vocab, k, isa);
        row[labels[r]] -= static_cast<float>(grad_coef);
      }
    }
  });
  for (double l : row_loss) result.loss += l;
  result.loss *= inv_count;
  return result;
}

}  // namespace cpu
}  // namespace tk
