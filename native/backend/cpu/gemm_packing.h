// Internal to the GEMM (backend/cpu/gemm.cc drives, gemm_packing.cc packs): the packing steps and
// the per-thread scratch they share. Packing copies a block of op(A) or op(B) into contiguous
// panels in the order a micro-kernel reads them — transposing, decoding compressed weights and
// rounding to bf16 on the way (see backend/cpu/kernels/gemm_kernels.h for the layouts).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "kernels/gemm_kernels.h"
#include "cpu_features.h"
#include "thread_pool.h"
#include "../../ops/gemm.h"

namespace tk {
namespace cpu {

// Per-thread buffers, grown on demand and reused across calls: packed A and B, their fp32
// staging copies, decoded weight rows, and A widened to fp32 (GemmKernel::a_widen).
enum class ScratchSlot { PackA, PackB, F32A, F32B, Decode, WideA, WideA2 };
float* scratch(ScratchSlot slot, size_t floats);

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// K blocks are multiples of this many values (see GemmKernel::k_unit).
inline int64_t k_unit(const GemmKernel& kr) { return kr.k_unit ? kr.k_unit : kr.bf16_pairs ? 2 : 1; }

// Values per row of a packed A panel holding `len` of K.
inline int64_t a_depth(const GemmKernel& kr, int64_t len) {
  return kr.a_pack ? round_up(len, kr.k_unit) : kr.bf16_pairs ? round_up(len, 2) : len;
}

// The micro-kernel for `isa` (AMX only where the CPU has it; bf16 picks the bf16 kernel).
GemmKernel kernel_for(Isa isa, bool bf16);

// Packs K range [p0, p0 + kc) of the concatenated operand [X | X2] (A side: rows are M) or
// [X ; X2] (B side: rows are N), rows [r0, r0 + rows), as fp32 panels of width w, split at the
// first product's depth k1.
void pack_block(const GemmOperand& x, const GemmOperand& x2, int64_t k1, bool b_side, const GemmKernel& kr,
                int w, int64_t r0, int64_t rows, int64_t p0, int64_t kc, float* dst);

// The same block straight into the bf16 kernel's panels (pairs; A in the kernel's own layout when
// it has one); false when the fp32 staging path (pack_block + to_bf16) must be used.
bool pack_block_pairs(const GemmOperand& x, const GemmOperand& x2, int64_t k1, bool b_side, const GemmKernel& kr,
                      int w, int64_t r0, int64_t rows, int64_t p0, int64_t kc, uint16_t* dst);

// fp32 panels (depth kc) as bf16-pair panels for a bf16 kernel, or rounded in place for an fp32
// kernel in bf16 mode.
void to_bf16(const GemmKernel& kr, const float* src, int64_t panels, int w, int64_t kc, void* dst);

// Columns [j0, j0 + cols) of a plain B operand, K range [p0, p0 + len), as bf16-pair panels of
// depth round_up(len, 2).
void pack_b_pairs(const GemmOperand& x, const GemmKernel& kr, int64_t j0, int64_t cols, int64_t p0, int64_t len,
                  uint16_t* dst);

// Empty panels for op(X) (k x n) in panels of `nr`, depth k rounded up to depth_unit, 64-byte aligned;
// `transient` ones (packed afresh each step) are blocks of the block cache.
std::unique_ptr<GemmPanels> new_panels(int64_t n, int64_t k, int nr, int64_t depth_unit, bool transient);

}  // namespace cpu
}  // namespace tk
