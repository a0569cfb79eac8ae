// GEMM: C = alpha * (op(A)·op(B) + op(A2)·op(B2)) + beta * C, row-major, fp32 accumulation.
// Why one general routine: a linear layer needs three products — Y = X·Wᵀ (forward), dX = dY·W
// and dW = dYᵀ·X (backward) — which differ only in which operand is transposed; the packing step
// absorbs transposition, weight decoding (bf16, f16, NF4, GGUF blocks) and bf16 rounding, so one
// micro-kernel per ISA serves them all. The optional second product (A2, B2) shares the output
// pass: LoRA's low-rank term X·Aᵀ·Bᵀ rides along the frozen product as extra K columns.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "weights.h"

namespace tk {

// Gives a panel block back to the CPU backend's block cache, or (bytes 0) to the system
// (defined in backend/cpu/gemm_packing.cc).
struct PanelBlockFree {
  size_t bytes = 0;
  void operator()(uint16_t* p) const;
};

// A prepared operand (the CPU backend's; other backends prepare none): a frozen B operand packed
// once, as bf16 pairs in the bf16 kernel's panel layout (NR columns per panel, the whole K deep). Why: a LoRA step multiplies by the same frozen weights in every
// step; decoding, transposing and rounding them again each time was a twentieth of a bf16 step,
// and with B ready every thread can take its own rows of A instead of all threads packing all of A.
// Costs 2 bytes per weight per orientation (backend/cpu/kernels.h, gemm_pack_panels).
struct GemmPanels {
  int64_t n = 0, k = 0;  // op(B) is k x n
  int nr = 0;            // columns per panel
  int64_t depth = 0;     // k rounded up to even: bf16 values per panel row (pairs x 2)
  std::unique_ptr<uint16_t[], PanelBlockFree> data;  // ceil(n / nr) panels of depth x nr values, 64-byte aligned
  size_t bytes = 0;
};

struct GemmOperand {
  const float* data = nullptr;  // dense fp32, row-major with row stride ld ...
  int64_t ld = 0;
  const WeightView* weights = nullptr;  // ... or a weight matrix in any format (B operands only)
  bool trans = false;
  // B operand: the matrix already packed, as op(B) = W ([0]) and Wᵀ ([1]); the product uses the
  // one its `trans` picks when it runs in bf16 on a kernel with that panel width (its leading
  // k x n part when the panels hold more, or the k x n part at row panel_k0 and column panel_n0:
  // attention takes a tile of keys from a head's panels). Where the panels cannot serve (another
  // kernel, an odd k), B is packed from `data`, which must therefore point at that same part.
  const GemmPanels* panels[2] = {nullptr, nullptr};
  int64_t panel_k0 = 0;  // even
  int64_t panel_n0 = 0;  // a multiple of the panels' width
};

struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;  // op(A) is m x k, op(B) is k x n, C is m x n
  GemmOperand a, b;
  int64_t k2 = 0;               // optional second product: op(A2) is m x k2, op(B2) is k2 x n
  GemmOperand a2, b2;
  float* c = nullptr;
  int64_t ldc = 0;
  float alpha = 1.0f;
  float beta = 0.0f;  // 0: C is overwritten and never read (so garbage/NaN in C is ignored)
  bool bf16 = false;  // operands rounded to bf16 (round-to-nearest-even), fp32 accumulation
};

// The op: OpTable::gemm (backend/backend.h). The CPU's (backend/cpu/gemm.cc) is blocked, packed and
// multi-threaded, its micro-kernel chosen by the ISA (bf16 products use AMX tiles where the ISA is
// amx, vdpbf16ps where it has AVX512_BF16, else the fp32 kernel on bf16-rounded operands).

// Plain reference: triple loop with fp64 accumulation over the same (decoded, rounded) operands,
// single-threaded. Every fast kernel is tested against an fp64 reference.
void gemm_reference(const GemmArgs& args);

}  // namespace tk
