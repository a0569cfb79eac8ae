// GEMM packing (backend/cpu/gemm_packing.h): dense operands, weights in any format, the bf16 kernels'
// pair panels and the AMX kernel's A rows, and the panels kept across products (gemm.h).
#include "gemm_packing.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "../../core/error.h"
#include "../../core/float16.h"
#include "block_cache.h"
#include "kernels.h"

namespace tk {
namespace cpu {
namespace {

// Per-thread scratch, grown on demand and reused across calls.
struct Scratch {
  float* data = nullptr;
  size_t capacity = 0;
  ~Scratch() { std::free(data); }
  float* get(size_t floats) {
    if (floats > capacity) {
      std::free(data);
      size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
      data = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!data) {
        capacity = 0;
        fail(ErrorCode::OutOfMemory, "could not allocate GEMM packing buffer");
      }
      capacity = floats;
    }
    return data;
  }
};
thread_local Scratch tls_scratch[7];

}  // namespace

float* scratch(ScratchSlot slot, size_t floats) { return tls_scratch[static_cast<int>(slot)].get(floats); }

namespace {

// Packs op(X)[r0 : r0+rows, p0 : p0+kc] of a dense operand as panels of width `w` (depth `depth`
// between panels), writing depth rows q0.. of each panel. `trans` means X is stored k x rows.
void pack_dense(const GemmOperand& x, const GemmKernel& kr, int w, int64_t r0, int64_t rows, int64_t p0,
                int64_t kc, int64_t q0, int64_t depth, float* dst) {
  for (int64_t rr = 0; rr < rows; rr += w) {
    const int64_t n = std::min<int64_t>(w, rows - rr);
    float* panel = dst + rr * depth + q0 * w;
    if (x.trans) {  // op(X)[r, p] = X[p, r]: each step reads n contiguous values
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = x.data + (p0 + p) * x.ld + r0 + rr;
        float* out = panel + p * w;
        std::memcpy(out, src, n * sizeof(float));
        for (int64_t i = n; i < w; ++i) out[i] = 0.0f;
      }
    } else {  // op(X)[r, p] = X[r, p]: a transposing copy
      kr.transpose_pack(x.data + (r0 + rr) * x.ld + p0, x.ld, n, kc, w, panel);
    }
  }
}

// The same for a B operand held as a WeightView W: op(B) = W (k x n) or Wᵀ (trans).
void pack_weights(const GemmOperand& x, const GemmKernel& kr, int64_t j0, int64_t cols, int64_t p0, int64_t kc,
                  int64_t q0, int64_t depth, float* dst) {
  const WeightView& w = *x.weights;
  const int nr = kr.nr;
  if (x.trans) {  // op(B)[p, j] = W[j, p]: decode NR rows of W, then transpose them into the panel
    float* rowbuf = scratch(ScratchSlot::Decode, static_cast<size_t>(nr * kc));
    for (int64_t jr = 0; jr < cols; jr += nr) {
      const int64_t n = std::min<int64_t>(nr, cols - jr);
      for (int64_t j = 0; j < n; ++j) decode_weights(w, j0 + jr + j, p0, kc, rowbuf + j * kc);
      kr.transpose_pack(rowbuf, kc, n, kc, nr, dst + jr * depth + q0 * nr);
    }
  } else {  // op(B)[p, j] = W[p, j]: decode a row segment per step and scatter it across panels
    float* row = scratch(ScratchSlot::Decode, static_cast<size_t>(cols));
    for (int64_t p = 0; p < kc; ++p) {
      decode_weights(w, p0 + p, j0, cols, row);
      for (int64_t jr = 0; jr < cols; jr += nr) {
        const int64_t n = std::min<int64_t>(nr, cols - jr);
        float* out = dst + jr * depth + (q0 + p) * nr;
        std::memcpy(out, row + jr, n * sizeof(float));
        for (int64_t j = n; j < nr; ++j) out[j] = 0.0f;
      }
    }
  }
}

}  // namespace

// Packs K range [p0, p0 + kc) of the concatenated operand [X | X2] (A side: rows are M) or
// [X ; X2] (B side: rows are N), splitting the range at the first product's depth k1.
void pack_block(const GemmOperand& x, const GemmOperand& x2, int64_t k1, bool b_side, const GemmKernel& kr,
                int w, int64_t r0, int64_t rows, int64_t p0, int64_t kc, float* dst) {
  const int64_t split = std::clamp<int64_t>(k1 - p0, 0, kc);
  auto pack = [&](const GemmOperand& op, int64_t from, int64_t len, int64_t q0) {
    if (len <= 0) return;
    if (op.weights) return pack_weights(op, kr, r0, rows, from, len, q0, kc, dst);
    // pack_dense's `trans` means "stored K-major"; a B operand is K-major when not transposed.
    GemmOperand stored = op;
    if (b_side) stored.trans = !op.trans;
    pack_dense(stored, kr, w, r0, rows, from, len, q0, kc, dst);
  };
  pack(x, p0, split, 0);
  pack(x2, p0 + split - k1, kc - split, split);
}

constexpr int64_t kKmajorChunk = 16;  // K rows per pass of the K-major packers (even: pairs stay whole)

namespace {

// A B operand held as weights, K range [from, from + len), straight into bf16-pair panels of
// `depth` (dst: this range's first pair): decoded a few rows at a time into fp32 and paired from
// there. Why: staging whole fp32 panels (a transposing or scattering copy) and pairing them after
// were two more passes over every weight of a product that decodes its weights (QLoRA's NF4,
// GGUF bases without kept panels).
void pack_weight_pairs(const GemmOperand& x, const GemmKernel& kr, int w, int64_t j0, int64_t cols, int64_t from,
                       int64_t len, int64_t depth, uint16_t* dst) {
  const WeightView& wv = *x.weights;
  if (x.trans) {  // op(B)[p, j] = W[j, p]: w rows of W, K-contiguous, one panel at a time
    float* rows = scratch(ScratchSlot::Decode, static_cast<size_t>(w * len));
    for (int64_t jr = 0; jr < cols; jr += w) {
      const int n = static_cast<int>(std::min<int64_t>(w, cols - jr));
      for (int j = 0; j < n; ++j) decode_weights(wv, j0 + jr + j, from, len, rows + j * len);
      kr.pair_pack_transpose(rows, len, n, w, len, dst + jr * depth);
    }
    return;
  }
  // op(B)[p, j] = W[p, j]: kKmajorChunk K rows' segments at a time, paired across every panel.
  float* chunk = scratch(ScratchSlot::Decode, static_cast<size_t>(kKmajorChunk * cols));
  for (int64_t p = 0; p < len; p += kKmajorChunk) {
    const int64_t kn = std::min(kKmajorChunk, len - p);
    for (int64_t i = 0; i < kn; ++i) decode_weights(wv, from + p + i, j0, cols, chunk + i * cols);
    for (int64_t jr = 0; jr < cols; jr += w)
      kr.pair_pack_kmajor(chunk + jr, cols, static_cast<int>(std::min<int64_t>(w, cols - jr)), w, kn, dst + jr * depth + p * w);
  }
}

}  // namespace

// Packs the same block straight into bf16-pair panels when the kernel can (dense operands, or
// weights on the B side; a segment split on a pair boundary); returns false when the fp32 staging
// path must be used.
bool pack_block_pairs(const GemmOperand& x, const GemmOperand& x2, int64_t k1, bool b_side, const GemmKernel& kr,
                      int w, int64_t r0, int64_t rows, int64_t p0, int64_t kc, uint16_t* dst) {
  if (!kr.pair_pack_kmajor) return false;
  const int64_t split = std::clamp<int64_t>(k1 - p0, 0, kc);
  if (!b_side && kr.a_pack) {  // the kernel's own A layout, from dense operands (gemm() checks)
    const int64_t depth = a_depth(kr, kc);
    auto pack = [&](const GemmOperand& op, int64_t from, int64_t len, int64_t q0) {
      // K-major A (dYᵀ) in steps of k_unit rows across all panels: one panel's walk down every
      // row of K would touch a new page per row.
      const int64_t step = op.trans ? kr.k_unit : len;
      for (int64_t p = 0; p < len; p += step)
        for (int64_t rr = 0; rr < rows; rr += w) {
          const int n = static_cast<int>(std::min<int64_t>(w, rows - rr));
          const float* src = op.trans ? op.data + (from + p) * op.ld + r0 + rr : op.data + (r0 + rr) * op.ld + from;
          kr.a_pack(src, op.ld, op.trans, n, std::min(step, len - p), q0 + p, dst + rr * depth);
        }
    };
    pack(x, p0, split, 0);
    pack(x2, p0 + split - k1, kc - split, split);
    return true;
  }
  const bool weights = (split > 0 && x.weights) || (split < kc && x2.weights);
  if ((weights && !b_side) || (split % 2 && split < kc)) return false;
  const int64_t depth = round_up(kc, 2);
  auto pack = [&](const GemmOperand& op, int64_t from, int64_t len, int64_t q0) {
    if (len <= 0) return;
    if (op.weights) return pack_weight_pairs(op, kr, w, r0, rows, from, len, depth, dst + q0 * w);
    const bool k_major = b_side ? !op.trans : op.trans;
    if (k_major) {
      // Sixteen K rows at a time across all panels: one panel's walk down every row of K would
      // touch a new page per row (dX = dY·W reads W's rows 8-32 KiB apart).
      for (int64_t p = 0; p < len; p += kKmajorChunk)
        for (int64_t rr = 0; rr < rows; rr += w) {
          const int n = static_cast<int>(std::min<int64_t>(w, rows - rr));
          kr.pair_pack_kmajor(op.data + (from + p) * op.ld + r0 + rr, op.ld, n, w, std::min(kKmajorChunk, len - p),
                              dst + rr * depth + (q0 + p) * w);
        }
      return;
    }
    for (int64_t rr = 0; rr < rows; rr += w) {
      const int n = static_cast<int>(std::min<int64_t>(w, rows - rr));
      kr.pair_pack_transpose(op.data + (r0 + rr) * op.ld + from, op.ld, n, w, len, dst + rr * depth + q0 * w);
    }
  };
  pack(x, p0, split, 0);
  pack(x2, p0 + split - k1, kc - split, split);
  return true;
}

// Rewrites fp32 panels (depth kc) as bf16-pair panels for a bf16 kernel or, for an fp32 kernel
// in bf16 mode, rounds them to bf16 in place.
void to_bf16(const GemmKernel& kr, const float* src, int64_t panels, int w, int64_t kc, void* dst) {
  if (!kr.bf16_pairs) {
    float* out = static_cast<float*>(dst);
    for (int64_t i = 0; i < panels * w * kc; ++i) out[i] = round_to_bf16(src[i]);
    return;
  }
  kr.pair_pack(src, panels, w, kc, static_cast<uint16_t*>(dst));
}

// Packs columns [j0, j0 + cols) of a plain B operand, K range [p0, p0 + len), as bf16-pair panels
// of depth round_up(len, 2).
void pack_b_pairs(const GemmOperand& x, const GemmKernel& kr, int64_t j0, int64_t cols, int64_t p0, int64_t len,
                  uint16_t* dst) {
  if (pack_block_pairs(x, x, len, true, kr, kr.nr, j0, cols, p0, len, dst)) return;
  float* staged = scratch(ScratchSlot::F32B, static_cast<size_t>(round_up(len, 2) * round_up(cols, kr.nr)));
  pack_block(x, x, len, true, kr, kr.nr, j0, cols, p0, len, staged);
  to_bf16(kr, staged, (cols + kr.nr - 1) / kr.nr, kr.nr, len, dst);
}

GemmKernel kernel_for(Isa isa, bool bf16) {
  switch (isa) {
    case Isa::Amx:
      if (bf16 && cpu_features().amx_bf16) return gemm_kernel_amx(cpu_features().amx_emulated);
      [[fallthrough]];
    case Isa::Avx512Bf16: return bf16 ? gemm_kernel_avx512_bf16() : gemm_kernel_avx512();
    case Isa::Avx512: return gemm_kernel_avx512();
    case Isa::Avx2: return bf16 ? gemm_kernel_avx2_bf16() : gemm_kernel_avx2();
    case Isa::Scalar: break;
  }
  return gemm_kernel_scalar();
}

// Empty panels for op(X) (k x n) in panels of `nr`, 64-byte aligned (the kernel's aligned loads).
// Transient panels (a step's shared inputs, attention operands) come from the block cache: a step
// packs them afresh, and fresh allocations of these sizes cost a page fault per 4 KiB every step.
// A frozen weight's kept panels (`transient` false) live as long as the model, so they are plain
// allocations that go back to the system when the model does.
std::unique_ptr<GemmPanels> new_panels(int64_t n, int64_t k, int nr, int64_t depth_unit, bool transient) {
  auto p = std::make_unique<GemmPanels>();
  p->n = n, p->k = k, p->nr = nr, p->depth = round_up(k, depth_unit);
  p->bytes = static_cast<size_t>((n + nr - 1) / nr * p->depth * nr) * sizeof(uint16_t);
  const size_t bytes = (p->bytes + 63) / 64 * 64;
  void* data = nullptr;
  try {
    data = transient ? BlockCache::instance().get(bytes) : std::aligned_alloc(64, bytes);
  } catch (const std::bad_alloc&) {
  }
  if (!data) fail(ErrorCode::OutOfMemory, "could not allocate " + std::to_string(p->bytes) + " bytes of packed panels");
  p->data = std::unique_ptr<uint16_t[], PanelBlockFree>(static_cast<uint16_t*>(data), PanelBlockFree{transient ? bytes : 0});
  return p;
}

std::unique_ptr<GemmPanels> gemm_pack_panels(const WeightView& w, bool trans, Isa isa, ThreadPool& pool) {
  const GemmKernel kr = kernel_for(isa, true);
  if (!kr.bf16_pairs) return nullptr;
  auto p = new_panels(trans ? w.rows : w.cols, trans ? w.cols : w.rows, kr.nr, 2, false);
  const int64_t panels = (p->n + kr.nr - 1) / kr.nr;
  GemmOperand op;
  op.weights = &w;
  op.trans = trans;
  const int tasks = static_cast<int>(std::min<int64_t>(pool.size(), panels));
  pool.run(tasks, [&](int t) {
    float* staged = scratch(ScratchSlot::F32B, static_cast<size_t>(p->depth * kr.nr));
    for (int64_t i = panels * t / tasks; i < panels * (t + 1) / tasks; ++i) {
      const int64_t j0 = i * kr.nr, cols = std::min<int64_t>(kr.nr, p->n - j0);
      pack_weights(op, kr, j0, cols, 0, p->k, 0, p->k, staged);
      kr.pair_pack(staged, 1, kr.nr, p->k, p->data.get() + i * p->depth * kr.nr);
    }
  });
  return p;
}

std::unique_ptr<GemmPanels> gemm_pack_dense_panels(const float* b, int64_t ld, bool trans, int64_t k, int64_t n, Isa isa) {
  const GemmKernel kr = kernel_for(isa, true);
  if (!kr.bf16_pairs || !kr.pair_pack_kmajor) return nullptr;
  auto p = new_panels(n, k, kr.nr, 2, true);
  GemmOperand op;
  op.data = b, op.ld = ld, op.trans = trans;
  pack_block_pairs(op, op, k, true, kr, kr.nr, 0, n, 0, k, p->data.get());
  return p;
}

std::unique_ptr<GemmPanels> gemm_pack_a_panels(const float* a, int64_t ld, int64_t m, int64_t k, Isa isa, ThreadPool& pool) {
  const GemmKernel kr = kernel_for(isa, true);
  if (!kr.bf16_pairs || !kr.pair_pack_transpose) return nullptr;
  if (kr.a_widen && k > kr.kc) return nullptr;  // products in several K blocks pack their own (gemm_range_panels)
  auto p = new_panels(m, k, kr.mr, kr.a_pack ? kr.k_unit : 2, true);
  const int64_t panels = (m + kr.mr - 1) / kr.mr;
  GemmOperand op;
  op.data = a, op.ld = ld;
  const int tasks = static_cast<int>(std::min<int64_t>(pool.size(), panels));
  pool.run(tasks, [&](int t) {
    const int64_t p0 = panels * t / tasks, p1 = panels * (t + 1) / tasks;
    const int64_t r0 = p0 * kr.mr, rows = std::min(m, p1 * kr.mr) - r0;
    if (rows > 0) pack_block_pairs(op, op, k, false, kr, kr.mr, r0, rows, 0, k, p->data.get() + r0 * p->depth);
  });
  return p;
}
}  // namespace cpu

void PanelBlockFree::operator()(uint16_t* p) const {
  if (bytes) return BlockCache::instance().put(p, bytes);
  std::free(p);
}

}  // namespace tk
