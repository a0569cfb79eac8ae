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

#include "../core/cpu_features.h"
#include "../core/thread_pool.h"
#include "weights.h"

namespace tk {

// A frozen B operand packed once, as bf16 pairs in the bf16 kernel's panel layout (NR columns
// per panel, the whole K deep). Why: a LoRA step multiplies by the same frozen weights in every
// step; decoding, transposing and rounding them again each time was a twentieth of a bf16 step,
// and with B ready every thread can take its own rows of A instead of all threads packing all of A.
// Costs 2 bytes per weight per orientation; see gemm_pack_panels.
struct GemmPanels {
  int64_t n = 0, k = 0;  // op(B) is k x n
  int nr = 0;            // columns per panel
  int64_t depth = 0;     // k rounded up to even: bf16 values per panel row (pairs x 2)
  struct Free {
    void operator()(uint16_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint16_t[], Free> data;  // ceil(n / nr) panels of depth x nr values, 64-byte aligned
  size_t bytes = 0;
};

struct GemmOperand {
  const float* data = nullptr;  // dense fp32, row-major with row stride ld ...
  int64_t ld = 0;
  const WeightView* weights = nullptr;  // ... or a weight matrix in any format (B operands only)
  bool trans = false;
  // B operand: the matrix already packed, as op(B) = W ([0]) and Wᵀ ([1]); the product uses the
  // one its `trans` picks when it runs in bf16 on a kernel with that panel width (its leading
  // k x n part when the panels hold more).
  const GemmPanels* panels[2] = {nullptr, nullptr};
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

// Fast path: blocked, packed, multi-threaded; the micro-kernel is chosen by `isa` (bf16 products
// use AMX tiles where the ISA is amx, vdpbf16ps where it has AVX512_BF16, else the fp32 kernel on
// bf16-rounded operands).
void gemm(const GemmArgs& args, Isa isa, ThreadPool& pool);

// Packs op(W) (Wᵀ when trans) for the bf16 kernel `isa` uses; null when that kernel does not
// read bf16 pairs (no AVX512_BF16), when pre-packing would not be used anyway.
std::unique_ptr<GemmPanels> gemm_pack_panels(const WeightView& w, bool trans, Isa isa, ThreadPool& pool);

// The same for a dense op(B) (k x n; B row-major with row stride ld, stored n x k when trans), on
// the calling thread: attention packs a head's keys and values once for all its query blocks.
std::unique_ptr<GemmPanels> gemm_pack_dense_panels(const float* b, int64_t ld, bool trans, int64_t k, int64_t n, Isa isa);

// An A operand (m x k, row-major with row stride ld, not transposed) packed once as the bf16
// kernel's MR-row panels, for several products that share it (q, k and v of one layer): set as
// A's panels[0]. Used by bf16 products whose B is pre-packed too and whose K fits one block;
// null when the kernel takes no bf16 pairs.
std::unique_ptr<GemmPanels> gemm_pack_a_panels(const float* a, int64_t ld, int64_t m, int64_t k, Isa isa, ThreadPool& pool);

// Plain reference: triple loop with fp64 accumulation over the same (decoded, rounded) operands,
// single-threaded. Every fast kernel is tested against an fp64 reference.
void gemm_reference(const GemmArgs& args);

}  // namespace tk
