// The AVX2 kernel of bf16 mode, 6 x 16: B in bf16-pair panels (the layout of the AVX512_BF16
// kernel, gemm_kernels.h), A widened to fp32 once per A block (a_widen), products in fp32. A bf16
// value is the high half of an fp32, so one shift (a pair's first value) or one mask (its second)
// widens eight B lanes exactly; every product of two bf16 values is exact in fp32, and the sums
// run in the fp32 kernel's order, so results equal rounding both operands and using that kernel.
// Why: pair panels are what a model keeps of its frozen weights (weight_panels.h), so B is read
// pre-packed at 2 bytes a value instead of being decoded, transposed and rounded again in every
// product (17% of the SmolLM2-135M bf16 step on a Zen 3). A stays fp32 because widening it in the
// kernel (two more integer operations per row and pair) cost 27% of the kernel's speed there.
#include <immintrin.h>

#include <cstring>

#include "avx2_lanes.h"
#include "gemm_kernels.h"
#include "tile_store_avx2.h"
#include "transpose_avx2.h"

namespace tk {
namespace {

constexpr int MR = 6, NR = 16;

// Twelve accumulators, two B vectors, a broadcast and the mask: all 16 ymm registers. Each pair
// step runs as two passes (first values, then second values) so that only two B vectors are live.
// The loop is assembly because GCC 12 hoists the second pass's broadcasts into the first and
// spills five accumulators, whatever the intrinsics' order.
__attribute__((target("avx2,fma"))) void kernel_bf16_6x16(int64_t kc, const void* av, const void* bv, float* c,
                                                          int64_t ldc, float alpha, float beta) {
  const float* a = static_cast<const float*>(av);
  const uint16_t* b = static_cast<const uint16_t*>(bv);
  int64_t pairs = (kc + 1) / 2;
#define TK_ROW_DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
  TK_ROW_DECL(0) TK_ROW_DECL(1) TK_ROW_DECL(2) TK_ROW_DECL(3) TK_ROW_DECL(4) TK_ROW_DECL(5)
#undef TK_ROW_DECL
  if (pairs > 0) {
    // ymm12/13: B widened, ymm14: A's broadcast, ymm15: the high-half mask.
#define TK_ROW(i, at)                                        \
  "vbroadcastss " #at "(%[a]), %%ymm14\n\t"                 \
  "vfmadd231ps %%ymm14, %%ymm12, %t[c" #i "0]\n\t"           \
  "vfmadd231ps %%ymm14, %%ymm13, %t[c" #i "1]\n\t"
    asm volatile(
        "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n\t"
        "vpslld $16, %%ymm15, %%ymm15\n\t"
        "1:\n\t"
        "vmovdqu (%[b]), %%ymm12\n\t"  // (AVX2 shifts take no memory operand)
        "vmovdqu 32(%[b]), %%ymm13\n\t"
        "vpslld $16, %%ymm12, %%ymm12\n\t"
        "vpslld $16, %%ymm13, %%ymm13\n\t"
        TK_ROW(0, 0) TK_ROW(1, 4) TK_ROW(2, 8) TK_ROW(3, 12) TK_ROW(4, 16) TK_ROW(5, 20)
        "vpand (%[b]), %%ymm15, %%ymm12\n\t"
        "vpand 32(%[b]), %%ymm15, %%ymm13\n\t"
        TK_ROW(0, 24) TK_ROW(1, 28) TK_ROW(2, 32) TK_ROW(3, 36) TK_ROW(4, 40) TK_ROW(5, 44)
        "add $48, %[a]\n\t"
        "add $64, %[b]\n\t"
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        : [a] "+r"(a), [b] "+r"(b), [n] "+r"(pairs), [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10),
          [c11] "+x"(c11), [c20] "+x"(c20), [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31), [c40] "+x"(c40),
          [c41] "+x"(c41), [c50] "+x"(c50), [c51] "+x"(c51)
        :
        : "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
#undef TK_ROW
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#define TK_ROW_STORE(i) store_row_avx2(c + i * ldc, c##i##0, c##i##1, va, vb, beta != 0.0f);
  TK_ROW_STORE(0) TK_ROW_STORE(1) TK_ROW_STORE(2) TK_ROW_STORE(3) TK_ROW_STORE(4) TK_ROW_STORE(5)
#undef TK_ROW_STORE
}

// Eight fp32 lanes as bf16 in each lane's high half (low half zero), bit for bit float_to_bf16:
// ties to even, NaN kept quiet, denormals kept (vcvtneps2bf16 would flush them).
__attribute__((target("avx2"), always_inline)) inline __m256i bf16_high(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb));
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
  const __m256i quiet = _mm256_or_si256(u, _mm256_set1_epi32(0x00400000));
  return _mm256_and_si256(_mm256_blendv_epi8(rounded, quiet, nan), _mm256_set1_epi32(static_cast<int>(0xffff0000u)));
}

// Lanes [0, n) of v to out, n <= 8 (a full store would write past a 6-wide A panel). `more`: the
// row being stored is not a call's last row of a panel under 8 words wide, so the words past it
// are the next row's, which the same call writes afterwards: one full store does, where the
// exact-width copy goes through memory (0.6% of the SmolLM2-135M step in memmove).
__attribute__((target("avx2"), always_inline)) inline void store_first(float* out, __m256 v, int n, bool more = false) {
  if (n == 8 || more) return _mm256_storeu_ps(out, v);
  alignas(32) float lane[8];
  _mm256_store_ps(lane, v);
  std::memcpy(out, lane, static_cast<size_t>(n) * sizeof(float));
}

// K-major source: pair step q of lane i is (src[2q * ld + i], src[(2q + 1) * ld + i]), one 32-bit
// word: the first row's bf16 shifted down beside the second's.
__attribute__((target("avx2"))) void pair_pack_kmajor(const float* src, int64_t ld, int n, int width, int64_t kc,
                                                      uint16_t* dst) {
  const int64_t pairs = (kc + 1) / 2;
  for (int64_t q = 0; q < pairs; ++q) {
    const float* r0 = src + 2 * q * ld;
    const bool has_second = 2 * q + 1 < kc;
    for (int j = 0; j < width; j += 8) {
      const __m256i m = avx2_first_lanes(n - j);
      const __m256i x0 = bf16_high(_mm256_maskload_ps(r0 + j, m));
      const __m256i x1 = has_second ? bf16_high(_mm256_maskload_ps(r0 + ld + j, m)) : _mm256_setzero_si256();
      const __m256i out = _mm256_or_si256(_mm256_srli_epi32(x0, 16), x1);
      store_first(reinterpret_cast<float*>(dst + (q * width + j) * 2), _mm256_castsi256_ps(out), width - j < 8 ? width - j : 8,
                  width < 8 && q + 1 < pairs);
    }
  }
}

void pair_pack(const float* src, int64_t panels, int width, int64_t kc, uint16_t* dst) {
  const int64_t pairs = (kc + 1) / 2;
  for (int64_t p = 0; p < panels; ++p) pair_pack_kmajor(src + p * width * kc, width, width, width, kc, dst + p * width * pairs * 2);
}

// K-contiguous source: a row's values 2q and 2q + 1 are already side by side, so each row is
// rounded to bf16 in order (eight pairs from sixteen values) and the panel is an 8 x 8 transpose
// of 32-bit words, done with the fp32 transpose.
__attribute__((target("avx2"))) void pair_pack_transpose(const float* src, int64_t ld, int n, int width, int64_t kc,
                                                         uint16_t* dst) {
  const int64_t pairs = (kc + 1) / 2;
  for (int r0 = 0; r0 < width; r0 += 8) {
    const int rows = n - r0 < 0 ? 0 : (n - r0 > 8 ? 8 : n - r0);
    const int lanes = width - r0 < 8 ? width - r0 : 8;
    for (int64_t q0 = 0; q0 < pairs; q0 += 8) {
      const int qn = static_cast<int>(pairs - q0 < 8 ? pairs - q0 : 8);
      const int64_t p0 = 2 * q0, left = kc - p0;  // fp32 values left in each row (up to 16 used)
      const __m256i m_lo = avx2_first_lanes(left), m_hi = avx2_first_lanes(left - 8);
      __m256 r[8];
      for (int i = 0; i < 8; ++i) {
        if (i >= rows) {
          r[i] = _mm256_setzero_ps();
          continue;
        }
        const float* row = src + (r0 + i) * ld + p0;
        const __m256i lo = _mm256_srli_epi32(bf16_high(_mm256_maskload_ps(row, m_lo)), 16);
        const __m256i hi = _mm256_srli_epi32(bf16_high(_mm256_maskload_ps(row + 8, m_hi)), 16);
        // packus works per 128-bit half: [lo 0-3, hi 0-3 | lo 4-7, hi 4-7]; the permute restores order.
        r[i] = _mm256_castsi256_ps(_mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8));
      }
      transpose_8x8_ps(r);
      for (int q = 0; q < qn; ++q)
        store_first(reinterpret_cast<float*>(dst + ((q0 + q) * width + r0) * 2), r[q], lanes, width < 8 && q0 + q + 1 < pairs);
    }
  }
}

// Pair panels of A (6 rows, `depth` even) as fp32 panels of the same element offsets: pair step q
// of row i, (q * MR + i) * 2 + t, becomes step 2q + t at (2q + t) * MR + i. Writes 2 floats past
// the last panel (8-wide stores that the next step overwrites; the caller leaves the slack).
__attribute__((target("avx2"))) void a_widen(const uint16_t* src, int64_t panels, int64_t depth, float* dst) {
  const __m256i six = avx2_first_lanes(MR), high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  const int64_t steps = panels * depth / 2;  // panels follow each other, so one walk covers all
  for (int64_t q = 0; q < steps; ++q) {
    const __m256i w = _mm256_castps_si256(_mm256_maskload_ps(reinterpret_cast<const float*>(src + q * 2 * MR), six));
    _mm256_storeu_ps(dst + 2 * q * MR, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    _mm256_storeu_ps(dst + (2 * q + 1) * MR, _mm256_castsi256_ps(_mm256_and_si256(w, high)));
  }
}

}  // namespace

// KC counts bf16 elements, as for the AVX512_BF16 kernel.
GemmKernel gemm_kernel_avx2_bf16() {
  return {MR, NR, 512, 192, 2048, kernel_bf16_6x16, gemm_transpose_pack_avx2, true, pair_pack, pair_pack_kmajor, pair_pack_transpose,
          0, nullptr, nullptr, nullptr, a_widen};
}

}  // namespace tk
