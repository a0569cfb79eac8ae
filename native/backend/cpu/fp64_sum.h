// Σ a[i]·b[i] (·c[i]) over fp32 arrays, summed in fp64 over eight interleaved partial sums:
// independent chains the CPU overlaps (and the compiler may vectorize) in a fixed order, so
// results are reproducible. Norms (RMSNorm, the global gradient norm) use it: a plain running
// sum was a twentieth of a training step.
#pragma once
#include <cstdint>

namespace tk {

template <bool kThree = false>
inline double dot_f64(const float* a, const float* b, const float* c, int64_t n) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  auto term = [&](int64_t i) { return static_cast<double>(a[i]) * b[i] * (kThree ? static_cast<double>(c[i]) : 1.0); };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) lane[j] += term(i + j);
  double sum = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (; i < n; ++i) sum += term(i);
  return sum;
}

}  // namespace tk
