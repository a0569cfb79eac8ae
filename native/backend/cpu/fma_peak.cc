#include "fma_peak.h"

// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_* values.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

#include "amx_tiles.h"

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

__attribute__((target("avx512f,avx512bf16"))) double bf16_loop(long iters, float* sink) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
  const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = (__m512bh)_mm512_set1_epi32(0x33d633d6);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  *sink = _mm512_reduce_add_ps(s);
  return 4.0 * 16 * 12 * static_cast<double>(iters);
}

// Six independent accumulator tiles (TDPBF16PS: latency ~52 cycles, one issue per 16) fed by the
// same two 16 x 32 bf16 sources. Inline assembly as in backend/cpu/kernels/gemm_amx.cc.
double amx_loop(long iters, float* sink) {
  alignas(64) uint16_t src[16 * 32];
  for (auto& v : src) v = 0x3f80;  // 1.0
  amx_configure_tiles();
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm6\n\ttileloadd (%0,%1,1), %%tmm7" ::"r"(src), "r"(64L) : "memory");
  __asm__ volatile("tilezero %%tmm0\n\ttilezero %%tmm1\n\ttilezero %%tmm2\n\ttilezero %%tmm3\n\ttilezero %%tmm4\n\ttilezero %%tmm5" ::);
  for (long it = 0; it < iters; ++it)
    __asm__ volatile(
        "tdpbf16ps %%tmm7, %%tmm6, %%tmm0\n\ttdpbf16ps %%tmm7, %%tmm6, %%tmm1\n\ttdpbf16ps %%tmm7, %%tmm6, %%tmm2\n\t"
        "tdpbf16ps %%tmm7, %%tmm6, %%tmm3\n\ttdpbf16ps %%tmm7, %%tmm6, %%tmm4\n\ttdpbf16ps %%tmm7, %%tmm6, %%tmm5" ::);
  alignas(64) float out[16 * 16];
  __asm__ volatile("tilestored %%tmm0, (%0,%1,1)" ::"r"(out), "r"(64L) : "memory");
  amx_release_tiles();
  *sink = out[0];
  return 2.0 * 16 * 16 * 32 * 6 * static_cast<double>(iters);
}

using Loop = double (*)(long, float*);

// Runs `loop` on every thread, growing the iteration count until one run lasts `seconds`.
double time_loop(Loop loop, ThreadPool& pool, double seconds) {
  std::vector<float> sinks(pool.size() * 16);
  long iters = 1 << 16;
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

__attribute__((target("avx2"))) double sum_avx2(const float* p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  float out[8];
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return out[0];
}

double sum_scalar(const float* p, size_t n) {
  float s[4] = {0, 0, 0, 0};
  for (size_t i = 0; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) s[j] += p[i + j];
  return s[0] + s[1] + s[2] + s[3];
}

}  // namespace

double measure_fma_peak_gflops(Isa isa, ThreadPool& pool, double seconds) {
  return time_loop(isa >= Isa::Avx512 ? fma_loop_avx512 : isa == Isa::Avx2 ? fma_loop_avx2 : fma_loop_scalar, pool,
                   seconds);
}

double measure_bf16_peak_gflops(Isa isa, ThreadPool& pool, double seconds) {
  return isa >= Isa::Avx512Bf16 ? time_loop(bf16_loop, pool, seconds) : 0.0;
}

double measure_amx_peak_gflops(ThreadPool& pool, double seconds) {
  const CpuFeatures& f = cpu_features();
  return f.amx_bf16 && !f.amx_emulated ? time_loop(amx_loop, pool, seconds) : 0.0;
}

double measure_read_bandwidth_gbs(ThreadPool& pool, size_t bytes, double seconds) {
  const size_t n = bytes / sizeof(float) / 64 * 64;
  float* data = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  if (!data) return 0.0;
  const int threads = pool.size();
  pool.run(threads, [&](int t) {  // first touch by the reading thread
    for (size_t i = n * t / threads; i < n * (t + 1) / threads; ++i) data[i] = 1.0f;
  });
  const bool avx2 = cpu_features().avx2;
  std::vector<double> sinks(threads);
  double best = 0.0;
  const auto start = std::chrono::steady_clock::now();
  do {  // best of several passes: the ceiling, not the average
    auto t0 = std::chrono::steady_clock::now();
    pool.run(threads, [&](int t) {
      const size_t lo = n * t / threads / 32 * 32, hi = n * (t + 1) / threads / 32 * 32;
      sinks[t] += avx2 ? sum_avx2(data + lo, hi - lo) : sum_scalar(data + lo, hi - lo);
    });
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n * sizeof(float)) / dt / 1e9);
  } while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds);
  std::free(data);
  return best;
}

}  // namespace tk
