// AMX-BF16 micro-kernel, 32 x 32: four fp32 accumulator tiles (2 x 2 of 16 x 16) fed by two A
// tiles (16 rows x 32 bf16) and two B tiles (16 pair-rows x 16 columns) per 32-deep step; each
// TDPBF16PS does 16 x 16 x 32 multiply-adds, 256 times as many as one 512-bit vdpbf16ps.
//
// Operand layouts: B stays in the bf16-pair panels every bf16 kernel reads (NR = 32 columns, a
// pair-row is 128 bytes), so pre-packed weights and attention's key/value panels serve AMX as they
// are: one B tile is 16 pair-rows of half a panel, loaded with a 128-byte stride. A tiles want
// rows of K instead of pairs of K, so A is packed here as [K block of 32][32 rows][32 values]:
// each A tile is one contiguous kilobyte.
//
// The instructions are written as inline assembly with "memory" clobbers: GCC's _tile_* macros do
// not tell the compiler that a tile load reads memory, so it may drop or move the stores that fill
// what is loaded. The assembler knows AMX; no target flag needed.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#include "../amx_tiles.h"
#include "../../../core/float16.h"
#include "gemm_kernels.h"
#include "tile_store_avx512.h"
#include "transpose_avx512.h"

namespace tk {
namespace {

constexpr int MR = 32, NR = 32, KB = 32;  // KB: bf16 values per A tile row (16 pairs)

// Tuning hooks for other AMX parts (read per product): K depth and rows of A per packed block.
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  const int x = v ? std::atoi(v) : 0;
  return x > 0 ? x : fallback;
}

// The AMX instructions themselves, on tiles configured by amx_configure_tiles (backend/cpu/amx_tiles.h),
// every one 16 rows x 64 bytes: C (tmm0-3, fp32), A (tmm4-5), B (tmm6-7).
struct HardwareTiles {
  template <int T>
  static void load(const void* p, long stride) {
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(p), "r"(stride), "i"(T) : "memory");
  }
  template <int T>
  static void store(void* p, long stride) {
    __asm__ volatile("tilestored %%tmm%c2, (%0,%1,1)" ::"r"(p), "r"(stride), "i"(T) : "memory");
  }
  template <int T>
  static void zero() {
    __asm__ volatile("tilezero %%tmm%c0" ::"i"(T));
  }
  template <int C, int A, int B>
  static void dot() {
    __asm__ volatile("tdpbf16ps %%tmm%c0, %%tmm%c1, %%tmm%c2" ::"i"(B), "i"(A), "i"(C));
  }
};

// The same instructions in C, as the SDM defines them (fp32 sums in pair order), for CPUs without
// AMX: TUNEKIT_EMULATE_AMX=1 runs this kernel's packing, tails and layouts in CI; the hardware run
// differs only in the instructions above.
struct EmulatedTiles {
  static thread_local uint8_t tmm[8][16][64];
  template <int T>
  static void load(const void* p, long stride) {
    for (int r = 0; r < 16; ++r) std::memcpy(tmm[T][r], static_cast<const char*>(p) + r * stride, 64);
  }
  template <int T>
  static void store(void* p, long stride) {
    for (int r = 0; r < 16; ++r) std::memcpy(static_cast<char*>(p) + r * stride, tmm[T][r], 64);
  }
  template <int T>
  static void zero() {
    std::memset(tmm[T], 0, sizeof(tmm[T]));
  }
  template <int C, int A, int B>
  static void dot() {
    for (int m = 0; m < 16; ++m)
      for (int n = 0; n < 16; ++n) {
        float acc;
        std::memcpy(&acc, tmm[C][m] + 4 * n, 4);
        for (int k = 0; k < 16; ++k)
          for (int t = 0; t < 2; ++t) {
            uint16_t a, b;
            std::memcpy(&a, tmm[A][m] + 4 * k + 2 * t, 2);
            std::memcpy(&b, tmm[B][k] + 4 * n + 2 * t, 2);
            acc += bf16_to_float(a) * bf16_to_float(b);
          }
        std::memcpy(tmm[C][m] + 4 * n, &acc, 4);
      }
  }
};
thread_local uint8_t EmulatedTiles::tmm[8][16][64];

template <class Tiles>
__attribute__((target("avx512f,prfchw"))) void kernel_amx_32x32(int64_t kc, const void* av, const void* bv, float* c,
                                                                 int64_t ldc, float alpha, float beta) {
  const uint16_t* a = static_cast<const uint16_t*>(av);
  const uint16_t* b = static_cast<const uint16_t*>(bv);
  const int64_t full = kc / KB, rest = kc - full * KB;
  const long ldc_bytes = static_cast<long>(ldc * sizeof(float)), b_stride = NR * 2 * sizeof(uint16_t);
  // alpha = 1 (nearly every product) lets the tiles read and write C directly.
  const bool direct = alpha == 1.0f && (beta == 0.0f || beta == 1.0f);
  if (direct && beta == 1.0f) {
    Tiles::template load<0>(c, ldc_bytes);
    Tiles::template load<1>(c + 16, ldc_bytes);
    Tiles::template load<2>(c + 16 * ldc, ldc_bytes);
    Tiles::template load<3>(c + 16 * ldc + 16, ldc_bytes);
  } else {
    for (int i = 0; i < MR; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_ET0);
    Tiles::template zero<0>();
    Tiles::template zero<1>();
    Tiles::template zero<2>();
    Tiles::template zero<3>();
  }
  // One 32-deep step: A rows 0-15 and 16-31 (1 KiB each), B columns 0-15 and 16-31.
  auto step = [&](const uint16_t* as, const uint16_t* bs) {
    Tiles::template load<4>(as, 64);
    Tiles::template load<6>(bs, b_stride);
    Tiles::template dot<0, 4, 6>();
    Tiles::template load<7>(bs + 32, b_stride);
    Tiles::template dot<1, 4, 7>();
    Tiles::template load<5>(as + 16 * KB, 64);
    Tiles::template dot<2, 5, 6>();
    Tiles::template dot<3, 5, 7>();
  };
  for (int64_t s = 0; s < full; ++s) step(a + s * MR * KB, b + s * (KB / 2) * NR * 2);
  if (rest > 0) {
    // The last step is partial: A's panel is zero past kc, but B's pair-rows past kc belong to
    // the next K block or lie past the panel, so they are copied into a zeroed step.
    alignas(64) uint16_t tail[(KB / 2) * NR * 2];
    const int64_t pairs = (rest + 1) / 2;
    std::memcpy(tail, b + full * (KB / 2) * NR * 2, pairs * NR * 2 * sizeof(uint16_t));
    std::memset(tail + pairs * NR * 2, 0, (KB / 2 - pairs) * NR * 2 * sizeof(uint16_t));
    step(a + full * MR * KB, tail);
  }
  if (direct) {
    Tiles::template store<0>(c, ldc_bytes);
    Tiles::template store<1>(c + 16, ldc_bytes);
    Tiles::template store<2>(c + 16 * ldc, ldc_bytes);
    Tiles::template store<3>(c + 16 * ldc + 16, ldc_bytes);
    return;
  }
  alignas(64) float acc[MR * NR];
  Tiles::template store<0>(acc, NR * 4);
  Tiles::template store<1>(acc + 16, NR * 4);
  Tiles::template store<2>(acc + 16 * NR, NR * 4);
  Tiles::template store<3>(acc + 16 * NR + 16, NR * 4);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int i = 0; i < MR; ++i)
    store_row_avx512(c + i * ldc, _mm512_load_ps(acc + i * NR), _mm512_load_ps(acc + i * NR + 16), va, vb, beta != 0.0f);
}

// Index of op(A)[i, col] in a packed A panel.
inline int64_t a_index(int64_t i, int64_t col) { return ((col / KB) * MR + i) * KB + col % KB; }

// Any placement, one value at a time: segments that start off a 32-value boundary (a second
// operand whose first part has a ragged depth). The vector paths below write the same values.
void a_pack_scalar(const float* src, int64_t ld, bool k_major, int n, int64_t len, int64_t q0, uint16_t* panel) {
  for (int i = 0; i < MR; ++i)
    for (int64_t p = 0; p < len; ++p)
      panel[a_index(i, q0 + p)] = i < n ? float_to_bf16(k_major ? src[p * ld + i] : src[i * ld + p]) : 0;
}

// Zeroes columns [from, round_up(from, 32)) of every row: the padding the kernel's last step reads.
void zero_pad(int64_t from, uint16_t* panel) {
  if (from % KB == 0) return;
  for (int i = 0; i < MR; ++i) std::memset(panel + a_index(i, from), 0, (KB - from % KB) * sizeof(uint16_t));
}

// Rows of A contiguous in K (activations X, or dY in dX = dY·W): a converting copy per row.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void a_pack_rows(const float* src, int64_t ld, int n,
                                                                                 int64_t len, int64_t q0,
                                                                                 uint16_t* panel) {
  for (int i = 0; i < MR; ++i) {
    const float* row = src + i * ld;
    for (int64_t p = 0; p < len; p += KB) {
      const int64_t left = len - p;
      const __mmask16 m_lo = i >= n ? 0 : static_cast<__mmask16>(left >= 16 ? 0xffff : (1u << left) - 1);
      const __mmask16 m_hi = i >= n ? 0 : static_cast<__mmask16>(left >= 32 ? 0xffff : left <= 16 ? 0 : (1u << (left - 16)) - 1);
      const __m512 lo = _mm512_maskz_loadu_ps(m_lo, row + p), hi = _mm512_maskz_loadu_ps(m_hi, row + p + 16);
      const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // 32 values in order, zero past len
      _mm512_store_si512(panel + a_index(i, q0 + p), both);
    }
  }
}

// A stored K-major (dYᵀ in dW = dYᵀ·X): two K rows make a vector of bf16 pairs across 16 rows of
// A; sixteen such vectors transposed as 32-bit lanes are 16 rows of 16 pairs, one A tile's rows.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void a_pack_kmajor(const float* src, int64_t ld, int n,
                                                                                   int64_t len, int64_t q0,
                                                                                   uint16_t* panel) {
  alignas(64) uint16_t order[32];
  for (int i = 0; i < 16; ++i) order[2 * i] = static_cast<uint16_t>(i), order[2 * i + 1] = static_cast<uint16_t>(16 + i);
  const __m512i idx = _mm512_load_si512(order);
  for (int i0 = 0; i0 < MR; i0 += 16) {
    const int valid = n - i0 <= 0 ? 0 : (n - i0 > 16 ? 16 : n - i0);
    const __mmask16 m = static_cast<__mmask16>((1u << valid) - 1);
    for (int64_t p = 0; p < len; p += KB) {
      __m512 r[16];
      for (int q = 0; q < 16; ++q) {
        const int64_t k0 = p + 2 * q;
        const __m512 x0 = k0 < len ? _mm512_maskz_loadu_ps(m, src + k0 * ld + i0) : _mm512_setzero_ps();
        const __m512 x1 = k0 + 1 < len ? _mm512_maskz_loadu_ps(m, src + (k0 + 1) * ld + i0) : _mm512_setzero_ps();
        r[q] = _mm512_castsi512_ps(_mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(x1, x0)));
      }
      transpose_16x16_ps(r);  // r[i] = row i0 + i: its 16 pairs of this step
      uint16_t* out = panel + a_index(i0, q0 + p);
      for (int i = 0; i < 16; ++i) _mm512_store_ps(reinterpret_cast<float*>(out + i * KB), r[i]);
    }
  }
}

void a_pack(const float* src, int64_t ld, bool k_major, int n, int64_t len, int64_t q0, uint16_t* panel) {
  if (q0 % KB != 0) {
    a_pack_scalar(src, ld, k_major, n, len, q0, panel);
  } else if (k_major) {
    a_pack_kmajor(src, ld, n, len, q0, panel);
  } else {
    a_pack_rows(src, ld, n, len, q0, panel);
  }
  zero_pad(q0 + len, panel);
}

}  // namespace

// B panels and their packers are the AVX512_BF16 kernel's (every AMX CPU has AVX512_BF16).
// KC is a multiple of 32 so that only a product's last K block has a partial step. KC 384 and
// MC 64 keep a B panel (24 KiB) in L1 while A's panels stream from L2; they won an interleaved
// sweep (bench/amx-sweep.mjs) of KC 256-1024 x MC 64-128 on a Xeon with AMX (geometric mean over
// the bench shapes, 2 threads), by a margin within that machine's noise.
GemmKernel gemm_kernel_amx(bool emulated) {
  const int kc = (env_int("TUNEKIT_AMX_KC", 384) + KB - 1) / KB * KB;
  const int mc = (env_int("TUNEKIT_AMX_MC", 64) + MR - 1) / MR * MR;
  GemmKernel k = gemm_kernel_avx512_bf16();
  k.mr = MR, k.nr = NR, k.kc = kc, k.mc = mc;
  k.fn = emulated ? kernel_amx_32x32<EmulatedTiles> : kernel_amx_32x32<HardwareTiles>;
  k.k_unit = KB;
  k.a_pack = a_pack;
  if (!emulated) k.prepare = amx_configure_tiles, k.finish = amx_release_tiles;
  return k;
}

}  // namespace tk
