// Sums of fp32 terms in fp64 over interleaved partial sums: independent chains the CPU overlaps
// (and the compiler vectorizes) in a fixed order, so results are reproducible. Norms (RMSNorm,
// LayerNorm, the global gradient norm) use them: a plain running sum waits on each add (RMSNorm's
// took a twentieth of a training step; LayerNorm's about 6% of GPT-2's bf16 step on AMX).
#pragma once
#include <cstdint>

namespace tk {

// Σ term(i) for i < n, over kLanes partial sums (a power of two from 8), folded to eight lane by
// lane and those summed as a tree.
template <int kLanes = 8, class Term>
inline __attribute__((always_inline)) double sum_f64(int64_t n, Term term) {
  static_assert(kLanes >= 8 && (kLanes & (kLanes - 1)) == 0, "kLanes: a power of two from 8");
  double lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lane[j] += term(i + j);
  for (int half = kLanes / 2; half >= 8; half /= 2)
    for (int j = 0; j < half; ++j) lane[j] += lane[j + half];
  double sum = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (; i < n; ++i) sum += term(i);
  return sum;
}

// Σ a[i]·b[i] (·c[i]).
template <bool kThree = false>
inline double dot_f64(const float* a, const float* b, const float* c, int64_t n) {
  return sum_f64(n, [&](int64_t i) { return static_cast<double>(a[i]) * b[i] * (kThree ? static_cast<double>(c[i]) : 1.0); });
}

}  // namespace tk
