// Portable micro-kernel: plain C++ the compiler may vectorize with baseline SSE2 only.
// It is the path for CPUs without AVX2 and the one CI forces with TUNEKIT_ISA=scalar.
#include "gemm_kernels.h"

#include "../../../core/float16.h"

namespace tk {
namespace {

constexpr int MR = 4, NR = 8;

void kernel_4x8(int64_t kc, const void* av, const void* bv, float* c, int64_t ldc, float alpha, float beta) {
  const float* a = static_cast<const float*>(av);
  const float* b = static_cast<const float*>(bv);
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const float* ap = a + p * MR;
    const float* bp = b + p * NR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += ap[i] * bp[j];
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float v = alpha * acc[i][j];
      c[i * ldc + j] = beta == 0.0f ? v : v + beta * c[i * ldc + j];
    }
}

}  // namespace

void gemm_transpose_pack_scalar(const float* src, int64_t ld, int64_t rows, int64_t kc, int width, float* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = src + r * ld;
    for (int64_t p = 0; p < kc; ++p) dst[p * width + r] = row[p];
  }
  for (int64_t r = rows; r < width; ++r)
    for (int64_t p = 0; p < kc; ++p) dst[p * width + r] = 0.0f;
}

void gemm_pair_pack_scalar(const float* src, int64_t panels, int width, int64_t kc, uint16_t* dst) {
  const int64_t pairs = (kc + 1) / 2;
  for (int64_t pnl = 0; pnl < panels; ++pnl) {
    const float* in = src + pnl * width * kc;
    uint16_t* out = dst + pnl * width * pairs * 2;
    for (int64_t q = 0; q < pairs; ++q)
      for (int i = 0; i < width; ++i) {
        out[(q * width + i) * 2] = float_to_bf16(in[(2 * q) * width + i]);
        out[(q * width + i) * 2 + 1] = 2 * q + 1 < kc ? float_to_bf16(in[(2 * q + 1) * width + i]) : 0;
      }
  }
}

GemmKernel gemm_kernel_scalar() { return {MR, NR, 256, 128, 2048, kernel_4x8, gemm_transpose_pack_scalar, false, nullptr}; }

}  // namespace tk
