// Micro-kernels for the GEMM, one per ISA, and their blocking parameters.
// An fp32 micro-kernel computes one MR x NR tile of C from packed panels:
//   a: kc steps of MR values (a[p*MR + i] = op(A)[i, p]),
//   b: kc steps of NR values (b[p*NR + j] = op(B)[p, j]),
//   C[i, j] = alpha * sum_p a[p*MR+i] * b[p*NR+j] + beta * C[i, j]   (C not read when beta == 0).
// A bf16 micro-kernel reads panels of bf16 pairs instead: kc rounded up to even, and step q holds
//   a[(q*MR + i)*2 + t] = op(A)[i, 2q + t],  b[(q*NR + j)*2 + t] = op(B)[2q + t, j]
// — the layout vdpbf16ps multiplies and sums pairwise into fp32. The AMX kernel reads B the same
// way and A as rows (see GemmAPack).
#pragma once
#include <cstdint>

namespace tk {

using GemmMicroKernel = void (*)(int64_t kc, const void* a, const void* b, float* c, int64_t ldc, float alpha,
                                 float beta);

// Packs a rows x kc block stored row-major (src[r * ld + p]) as kc rows of `width` values
// (dst[p * width + r]), zero-filling rows..width. This is the transposing half of packing
// (A as stored, or Bᵀ as stored in the forward X·Wᵀ); it is a hot spot, so ISAs may vectorize it.
using GemmTransposePack = void (*)(const float* src, int64_t ld, int64_t rows, int64_t kc, int width,
                                   float* dst);
void gemm_transpose_pack_scalar(const float* src, int64_t ld, int64_t rows, int64_t kc, int width, float* dst);
void gemm_transpose_pack_avx2(const float* src, int64_t ld, int64_t rows, int64_t kc, int width, float* dst);
void gemm_transpose_pack_avx512(const float* src, int64_t ld, int64_t rows, int64_t kc, int width, float* dst);

// Rewrites `panels` fp32 panels (kc steps of `width` values each) as bf16-pair panels
// (ceil(kc/2) steps of width x 2 values, a zero pad for odd kc), rounding to nearest even.
using GemmPairPack = void (*)(const float* src, int64_t panels, int width, int64_t kc, uint16_t* dst);
void gemm_pair_pack_scalar(const float* src, int64_t panels, int width, int64_t kc, uint16_t* dst);

// Direct bf16-pair packing of one panel from a dense fp32 source, skipping the fp32 staging copy:
//   kmajor:    src[p * ld + i]  (K is the row index: B as stored for dX, A stored transposed)
//   transpose: src[i * ld + p]  (K is contiguous: activations, W in the forward X·Wᵀ)
// for lanes i < n (zero beyond, up to `width`) and steps p < kc; writes ceil(kc/2) pair steps.
using GemmPairPackDirect = void (*)(const float* src, int64_t ld, int n, int width, int64_t kc, uint16_t* dst);

// A-side packing for kernels whose A panels are not bf16 pairs (AMX: rows of K, in blocks of
// k_unit values). Writes columns [q0, q0 + len) of one MR-row panel from src (src[p * ld + i] when
// k_major, else src[i * ld + p]) for rows i < n (zero beyond), and zeroes the panel past q0 + len
// up to the next k_unit boundary.
using GemmAPack = void (*)(const float* src, int64_t ld, bool k_major, int n, int64_t len, int64_t q0, uint16_t* panel);

// Rewrites `panels` consecutive MR-row bf16-pair A panels of even `depth` as fp32 panels: pair step
// q, row i, value t, at (q*MR + i)*2 + t, goes to (2q + t)*MR + i.
using GemmAWiden = void (*)(const uint16_t* src, int64_t panels, int64_t depth, float* dst);

struct GemmKernel {
  int mr, nr;  // register tile
  int kc;      // depth of a packed panel
  int mc;      // max rows of A packed at once: the MC x KC block stays in L2
  int nc;      // max columns of B packed at once: the KC x NC block stays in L3
  GemmMicroKernel fn;
  GemmTransposePack transpose_pack;
  bool bf16_pairs;  // fn reads bf16-pair panels ...
  GemmPairPack pair_pack;  // ... which this makes from fp32 panels
  GemmPairPackDirect pair_pack_kmajor = nullptr;     // ... or straight from the operand
  GemmPairPackDirect pair_pack_transpose = nullptr;
  // K blocks are multiples of k_unit values, and A panels are k_unit-padded and packed by a_pack
  // (when set; else as bf16 pairs like B). 0: 2 for bf16-pair kernels, 1 otherwise.
  int k_unit = 0;
  GemmAPack a_pack = nullptr;
  void (*prepare)() = nullptr;  // per thread, before its first micro-kernel call (AMX: tile configuration)
  void (*finish)() = nullptr;   // ... and after its last
  // When set, fn reads A as fp32 panels (a[p*MR + i], depth even) made from the packed pair panels
  // by this, once per A block; B stays in pairs. Element offsets are those of the pair panels.
  GemmAWiden a_widen = nullptr;
};

// Floats an a_widen output may write past its last panel.
constexpr int64_t a_widen_slack = 8;

GemmKernel gemm_kernel_scalar();
GemmKernel gemm_kernel_avx2();
GemmKernel gemm_kernel_avx2_bf16();  // bf16 mode: bf16-pair panels, fp32 FMA
GemmKernel gemm_kernel_avx512();
GemmKernel gemm_kernel_avx512_bf16();
// Only where cpu_features().amx_bf16; `emulated`: the tile instructions in C (see CpuFeatures).
GemmKernel gemm_kernel_amx(bool emulated);

}  // namespace tk
