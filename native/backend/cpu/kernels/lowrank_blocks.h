// The walk both vector row kernels of lowrank_pass (lowrank_avx2.cc, lowrank_avx512.cc) take:
// blocks of 32 rows of Y, small enough to stay in L2 between the two products; `down` two rows
// at a time (then a last odd one), `up` over the whole block — prefetching its strips when no
// `down` pass brought the block into cache. Each ISA supplies the two kernels.
#pragma once
#include <cstdint>

namespace tk {
namespace cpu {

// Kernels: Kernels::down_pair<bool two>(y0, y1, n, rp, w, d0, d1, ldy) and
// Kernels::up_block<bool prefetch>(y, ldy, rows, n, rp, s, gp).
template <class Kernels>
void lowrank_row_blocks(const float* y, int64_t ldy, int64_t count, int64_t n, int64_t rp, const float* w, float* d,
                        const float* s, float* gp) {
  constexpr int64_t kRowBlock = 32;
  for (int64_t b0 = 0; b0 < count; b0 += kRowBlock) {
    const int64_t rows = count - b0 < kRowBlock ? count - b0 : kRowBlock;
    const float* yb = y + b0 * ldy;
    if (w) {
      int64_t i = 0;
      for (; i + 2 <= rows; i += 2)
        Kernels::template down_pair<true>(yb + i * ldy, yb + (i + 1) * ldy, n, rp, w, d + (b0 + i) * rp,
                                          d + (b0 + i + 1) * rp, ldy);
      if (i < rows) Kernels::template down_pair<false>(yb + i * ldy, nullptr, n, rp, w, d + (b0 + i) * rp, nullptr, ldy);
    }
    if (s && w) Kernels::template up_block<false>(yb, ldy, rows, n, rp, s + b0 * rp, gp);
    if (s && !w) Kernels::template up_block<true>(yb, ldy, rows, n, rp, s + b0 * rp, gp);
  }
}

}  // namespace cpu
}  // namespace tk
