// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_* values.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "vexp.h"

#include <cmath>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include "kernels/avx2_lanes.h"
#define TK_X86 1
#endif

namespace tk {
namespace {

#ifdef TK_X86
// The first min(left, 16) lanes of a vector.
inline __mmask16 lanes(int64_t left) { return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1); }

__attribute__((target("avx512f"))) inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f)), _mm512_set1_ps(-103.972084045410f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

__attribute__((target("avx512f"))) double exp_shifted_sum_avx512(const float* x, float shift, int64_t n, float* y) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
    _mm512_storeu_ps(y + i, e);
    acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  if (i < n) {
    const __mmask16 m = lanes(n - i);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s));
    const __m512 kept = _mm512_maskz_mov_ps(m, e);
    _mm512_mask_storeu_ps(y + i, m, e);
    acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(kept)));
    acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(kept), 1))));
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
}

__attribute__((target("avx512f"))) void sigmoid_avx512(const float* x, int64_t n, float* y) {
  const __m512 one = _mm512_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_loadu_ps(x + i)));
    _mm512_storeu_ps(y + i, _mm512_div_ps(one, _mm512_add_ps(one, e)));
  }
  if (i < n) {
    const __mmask16 m = lanes(n - i);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m, x + i)));
    _mm512_mask_storeu_ps(y + i, m, _mm512_div_ps(one, _mm512_add_ps(one, e)));
  }
}

// AVX2 + FMA: the same Cephes expf. Without vscalefps, 2^n is built from exponent bits, in two
// halves (2^⌊n/2⌋ · 2^(n − ⌊n/2⌋)) so that results below 2^-126 round to denormals as exp's do.
__attribute__((target("avx2,fma"))) inline __m256 exp256(__m256 x) {
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f)), _mm256_set1_ps(-103.972084045410f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i k = _mm256_cvtps_epi32(n), k1 = _mm256_srai_epi32(k, 1), k2 = _mm256_sub_epi32(k, k1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 two_k1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
  const __m256 two_k2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, two_k1), two_k2);
}

__attribute__((target("avx2,fma"))) inline __m256d widen_sum(__m256 e) {
  return _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(e)), _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
}

__attribute__((target("avx2,fma"))) double exp_shifted_sum_avx2(const float* x, float shift, int64_t n, float* y) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 e0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), s)), e1 = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), s));
    _mm256_storeu_ps(y + i, e0);
    _mm256_storeu_ps(y + i + 8, e1);
    acc0 = _mm256_add_pd(acc0, widen_sum(e0));
    acc1 = _mm256_add_pd(acc1, widen_sum(e1));
  }
  for (; i < n; i += 8) {
    const __m256i m = avx2_first_lanes(n - i);
    const __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), s)), _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(y + i, m, e);
    acc0 = _mm256_add_pd(acc0, widen_sum(e));
  }
  const __m256d t = _mm256_add_pd(acc0, acc1);
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));
  return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

__attribute__((target("avx2,fma"))) void sigmoid_avx2(const float* x, int64_t n, float* y) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const bool whole = i + 8 <= n;
    const __m256i m = avx2_first_lanes(n - i);
    const __m256 v = whole ? _mm256_loadu_ps(x + i) : _mm256_maskload_ps(x + i, m);
    const __m256 out = _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), v))));
    if (whole) _mm256_storeu_ps(y + i, out);
    else _mm256_maskstore_ps(y + i, m, out);
  }
}

__attribute__((target("avx2"))) float max_avx2(const float* x, int64_t n) {
  const __m256 lowest = _mm256_set1_ps(-INFINITY);
  __m256 m0 = lowest, m1 = lowest, m2 = lowest, m3 = lowest;  // independent chains, as max_avx512
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
    m2 = _mm256_max_ps(m2, _mm256_loadu_ps(x + i + 16));
    m3 = _mm256_max_ps(m3, _mm256_loadu_ps(x + i + 24));
  }
  for (; i < n; i += 8) {
    const __m256i m = avx2_first_lanes(n - i);
    m0 = _mm256_max_ps(m0, _mm256_blendv_ps(lowest, _mm256_maskload_ps(x + i, m), _mm256_castsi256_ps(m)));
  }
  const __m256 v = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

__attribute__((target("avx2"))) void scale_avx2(float* x, int64_t n, float k) {
  const __m256 vk = _mm256_set1_ps(k);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vk));
  for (; i < n; ++i) x[i] *= k;
}

__attribute__((target("avx2,fma"))) float dot_avx2(const float* p, const float* dy, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(p + i), _mm256_loadu_ps(dy + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(p + i + 8), _mm256_loadu_ps(dy + i + 8), acc1);
  }
  for (; i < n; i += 8) {
    const __m256i m = avx2_first_lanes(n - i);
    acc0 = _mm256_fmadd_ps(_mm256_maskload_ps(p + i, m), _mm256_maskload_ps(dy + i, m), acc0);
  }
  return avx2_sum(_mm256_add_ps(acc0, acc1));
}

__attribute__((target("avx2,fma"))) void softmax_backward_row_avx2(const float* p, float* dy, int64_t n, float scale,
                                                                  const float* row_dot) {
  const __m256 d = _mm256_set1_ps(row_dot ? *row_dot : dot_avx2(p, dy, n)), s = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_sub_ps(_mm256_loadu_ps(dy + i), d);
    _mm256_storeu_ps(dy + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(p + i), g), s));
  }
  const float dd = _mm256_cvtss_f32(d);
  for (; i < n; ++i) dy[i] = p[i] * (dy[i] - dd) * scale;
}
#endif

__attribute__((target("avx512f"))) float max_avx512(const float* x, int64_t n) {
  // Four independent running maxima: one would be a chain of dependent compares.
  __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
    m1 = _mm512_max_ps(m1, _mm512_loadu_ps(x + i + 16));
    m2 = _mm512_max_ps(m2, _mm512_loadu_ps(x + i + 32));
    m3 = _mm512_max_ps(m3, _mm512_loadu_ps(x + i + 48));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = lanes(n - i);
    m0 = _mm512_mask_max_ps(m0, m, m0, _mm512_maskz_loadu_ps(m, x + i));
  }
  return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

__attribute__((target("avx512f"))) void scale_avx512(float* x, int64_t n, float k) {
  const __m512 vk = _mm512_set1_ps(k);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), vk));
  for (; i < n; ++i) x[i] *= k;
}

__attribute__((target("avx512f"))) float dot_avx512(const float* p, const float* dy, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(p + i), _mm512_loadu_ps(dy + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(p + i + 16), _mm512_loadu_ps(dy + i + 16), acc1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = lanes(n - i);
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p + i), _mm512_maskz_loadu_ps(m, dy + i), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

__attribute__((target("avx512f"))) void softmax_backward_row_avx512(const float* p, float* dy, int64_t n, float scale,
                                                                    const float* row_dot) {
  const __m512 d = _mm512_set1_ps(row_dot ? *row_dot : dot_avx512(p, dy, n)), s = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(n - i);
    const __m512 pv = _mm512_maskz_loadu_ps(m, p + i), g = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, dy + i), d);
    _mm512_mask_storeu_ps(dy + i, m, _mm512_mul_ps(_mm512_mul_ps(pv, g), s));
  }
}

// Whether the vector paths of `least` may run (none off x86).
bool vector_isa(Isa isa, Isa least) {
#ifdef TK_X86
  return isa >= least;
#else
  (void)isa, (void)least;
  return false;
#endif
}

}  // namespace

double exp_shifted_sum(const float* x, float shift, int64_t n, float* y, Isa isa) {
#ifdef TK_X86
  if (vector_isa(isa, Isa::Avx512)) return exp_shifted_sum_avx512(x, shift, n, y);
  if (vector_isa(isa, Isa::Avx2)) return exp_shifted_sum_avx2(x, shift, n, y);
#endif
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += (y[i] = std::exp(x[i] - shift));
  return sum;
}

void sigmoid(const float* x, int64_t n, float* y, Isa isa) {
#ifdef TK_X86
  if (vector_isa(isa, Isa::Avx512)) return sigmoid_avx512(x, n, y);
  if (vector_isa(isa, Isa::Avx2)) return sigmoid_avx2(x, n, y);
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

float max_of(const float* x, int64_t n, Isa isa) {
#ifdef TK_X86
  if (vector_isa(isa, Isa::Avx512)) return max_avx512(x, n);
  if (vector_isa(isa, Isa::Avx2)) return max_avx2(x, n);
#endif
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

void scale_in_place(float* x, int64_t n, float k, Isa isa) {
#ifdef TK_X86
  if (vector_isa(isa, Isa::Avx512)) return scale_avx512(x, n, k);
  if (vector_isa(isa, Isa::Avx2)) return scale_avx2(x, n, k);
#endif
  for (int64_t i = 0; i < n; ++i) x[i] *= k;
}

void softmax_backward_row(const float* p, float* dy, int64_t n, float scale, const float* row_dot, Isa isa) {
#ifdef TK_X86
  if (vector_isa(isa, Isa::Avx512)) return softmax_backward_row_avx512(p, dy, n, scale, row_dot);
  if (vector_isa(isa, Isa::Avx2)) return softmax_backward_row_avx2(p, dy, n, scale, row_dot);
#endif
  double d = 0.0;
  if (row_dot) d = *row_dot;
  else
    for (int64_t i = 0; i < n; ++i) d += static_cast<double>(p[i]) * dy[i];
  for (int64_t i = 0; i < n; ++i) dy[i] = p[i] * (dy[i] - static_cast<float>(d)) * scale;
}

}  // namespace tk
