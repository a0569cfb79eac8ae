// Fused LoRA linear layer (PEFT's lora.Linear), W frozen:
//   forward   Y  = X·Wᵀ + s · (drop(X)·Aᵀ)·Bᵀ          X [m, in], W [out, in], A [r, in], B [out, r]
//   backward  dT = s · dY·B                           T = drop(X)·Aᵀ is saved by the forward
//             dB = s · dYᵀ·T,  dA = dTᵀ·drop(X),  dX = dY·W + drop'(dT·A)
// with s = alpha / r (or alpha / sqrt(r), rsLoRA). Fusion: the low-rank term rides along the frozen
// product as r extra K columns ([X | sT]·[W | B]ᵀ, and [dY | dT]·[W ; A] for dX without dropout),
// so Y and dX are each written in one pass; W may be any compact format, decoded in packing.
// Up to r = 16 the thin products (T, dT, dB, dA) run as fp32 row passes (backend/cpu/lowrank.h), dT and
// dB from one read of dY, and with bf16 only the two wide products round their operands; wider
// adapters use GEMMs for them too.
// Dropout is inverted dropout with a counter-based mask (seed, element index), recomputed in the
// backward instead of stored.
#pragma once
#include <cstdint>

#include "../core/host_device.h"
#include "gemm.h"

namespace tk {

struct LoraLinearArgs {
  int64_t m = 0, in = 0, out = 0, r = 0;
  const float* x = nullptr;    // [m, in]
  const GemmPanels* x_panels = nullptr;  // forward: X pre-packed (gemm_pack_a_panels), or null
  GemmOperand w;               // frozen W [out, in] (dense f32 or WeightView); trans is ignored
  bool w_in_out = false;       // W stored [in, out] instead (GPT-2's Conv1D), used as such
  const float* a = nullptr;    // [r, in]
  const float* b = nullptr;    // [out, r]
  float scale = 1.0f;
  float dropout = 0.0f;        // probability in [0, 1)
  uint64_t seed = 0;
  bool bf16 = false;
  bool accumulate_grads = false;  // backward: add into da, db instead of overwriting them
  bool accumulate_dx = false;     // backward: add into dx instead of overwriting it
  bool accumulate_y = false;      // forward: add into y (a residual connection) instead of overwriting it
};

// The ops: OpTable::lora_linear_forward (y [m, out] and t [m, r], saved for the backward, are
// written) and lora_linear_backward (da [r, in] and db [out, r] written, or added to with
// accumulate_grads; dx [m, in] too unless null, added to with accumulate_dx). The CPU's in
// backend/cpu/lora_linear.cc.

// The dropout multiplier (0 or 1 / (1 - p)) of element i of X for a seed: splitmix64 of (seed, i),
// a counter-based stream, identical on every thread, run and backend (the CUDA kernels call it too).
TK_HOST_DEVICE inline float lora_dropout_factor(uint64_t seed, int64_t i, float p) {
  if (p <= 0.0f) return 1.0f;
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (static_cast<uint64_t>(i) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);  // [0, 1) with 24 bits
  return u < p ? 0.0f : 1.0f / (1.0f - p);
}

}  // namespace tk
