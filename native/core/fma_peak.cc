#include "fma_peak.h"

// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_* values.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <chrono>
#include <vector>

namespace tk {
namespace {

// Each function runs `iters` rounds of independent FMAs and returns the flop count. Enough
// independent accumulators hide the FMA latency (4 cycles x 2 pipes = 8 in flight, 12 used).
__attribute__((target("avx512f"))) double fma_loop_avx512(long iters, float* sink) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  *sink = _mm512_reduce_add_ps(s);
  return 2.0 * 16 * 12 * static_cast<double>(iters);
}

__attribute__((target("avx2,fma"))) double fma_loop_avx2(long iters, float* sink) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(1.0f + i * 1e-3f);
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
  float out[8];
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  _mm256_storeu_ps(out, s);
  *sink = out[0];
  return 2.0 * 8 * 12 * static_cast<double>(iters);
}

double fma_loop_scalar(long iters, float* sink) {
  float acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = 1.0f + i * 1e-3f;
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
  float s = 0;
  for (float v : acc) s += v;
  *sink = s;
  return 2.0 * 12 * static_cast<double>(iters);
}

}  // namespace

double measure_fma_peak_gflops(Isa isa, ThreadPool& pool, double seconds) {
  auto loop = isa >= Isa::Avx512 ? fma_loop_avx512 : isa == Isa::Avx2 ? fma_loop_avx2 : fma_loop_scalar;
  std::vector<float> sinks(pool.size() * 16);
  long iters = 1 << 16;
  // Grow the iteration count until one run lasts long enough to time reliably.
  for (;;) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<double> flops(pool.size());
    pool.run(pool.size(), [&](int t) { flops[t] = loop(iters, &sinks[t * 16]); });
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt >= seconds || iters > (1L << 40)) {
      double total = 0;
      for (double f : flops) total += f;
      return total / dt / 1e9;
    }
    iters = dt < seconds / 16 ? iters * 8 : static_cast<long>(iters * seconds / dt * 1.1);
  }
}

}  // namespace tk
