// GEMM driver: the BLIS loop nest (NC -> KC -> MC -> NR -> MR) around a per-ISA micro-kernel.
// Packing copies a KC x NC block of op(B) and an MC x KC block of op(A) into contiguous panels in
// the order the micro-kernel reads them — transposing, decoding compressed weights and rounding to
// bf16 on the way — so the kernel streams memory linearly whatever the operands' layout. Threads
// split C into disjoint column (or row) ranges and each runs the whole loop nest on its range, so
// every C element is summed in one fixed order: results do not depend on scheduling.
#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../core/float16.h"
#include "cpu/gemm_kernels.h"

namespace tk {
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
thread_local Scratch tls_pack_a, tls_pack_b, tls_f32_a, tls_f32_b, tls_decode;

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// K blocks are multiples of this many values (see GemmKernel::k_unit).
int64_t k_unit(const GemmKernel& kr) { return kr.k_unit ? kr.k_unit : kr.bf16_pairs ? 2 : 1; }

// Values per row of a packed A panel holding `len` of K.
int64_t a_depth(const GemmKernel& kr, int64_t len) {
  return kr.a_pack ? round_up(len, kr.k_unit) : kr.bf16_pairs ? round_up(len, 2) : len;
}

// Brackets one thread's run of micro-kernel calls (AMX configures its tiles per thread).
struct KernelSession {
  const GemmKernel& kr;
  explicit KernelSession(const GemmKernel& k) : kr(k) {
    if (kr.prepare) kr.prepare();
  }
  ~KernelSession() {
    if (kr.finish) kr.finish();
  }
};

// Splits `total` into nearly equal blocks of at most `max_block`, each a multiple of `unit`.
int64_t block_size(int64_t total, int64_t max_block, int64_t unit) {
  int64_t blocks = (total + max_block - 1) / max_block;
  return round_up((total + blocks - 1) / blocks, unit);
}

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
    float* rowbuf = tls_decode.get(static_cast<size_t>(nr * kc));
    for (int64_t jr = 0; jr < cols; jr += nr) {
      const int64_t n = std::min<int64_t>(nr, cols - jr);
      for (int64_t j = 0; j < n; ++j) w.decode(j0 + jr + j, p0, kc, rowbuf + j * kc);
      kr.transpose_pack(rowbuf, kc, n, kc, nr, dst + jr * depth + q0 * nr);
    }
  } else {  // op(B)[p, j] = W[p, j]: decode a row segment per step and scatter it across panels
    float* row = tls_decode.get(static_cast<size_t>(cols));
    for (int64_t p = 0; p < kc; ++p) {
      w.decode(p0 + p, j0, cols, row);
      for (int64_t jr = 0; jr < cols; jr += nr) {
        const int64_t n = std::min<int64_t>(nr, cols - jr);
        float* out = dst + jr * depth + (q0 + p) * nr;
        std::memcpy(out, row + jr, n * sizeof(float));
        for (int64_t j = n; j < nr; ++j) out[j] = 0.0f;
      }
    }
  }
}

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

// Packs the same block straight into bf16-pair panels when the kernel can (dense operands, and a
// segment split on a pair boundary); returns false when the fp32 staging path must be used.
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
  if ((split > 0 && x.weights) || (split < kc && x2.weights) || (split % 2 && split < kc)) return false;
  const int64_t depth = round_up(kc, 2);
  auto pack = [&](const GemmOperand& op, int64_t from, int64_t len, int64_t q0) {
    if (len <= 0) return;
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

// Runs the whole loop nest for C[m0:m1, n0:n1].
void gemm_range(const GemmArgs& g, const GemmKernel& kr, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int64_t M = m1 - m0, N = n1 - n0, K = g.k + g.k2;
  if (M <= 0 || N <= 0) return;
  const int64_t nc_max = block_size(N, kr.nc, kr.nr);
  const int64_t kc_max = block_size(K, kr.kc, k_unit(kr));
  const int64_t mc_max = block_size(M, kr.mc, kr.mr);
  // In bf16 mode panels are first packed as fp32, then converted (in place for the fp32 kernel).
  const bool convert = g.bf16;
  const size_t b_floats = static_cast<size_t>(round_up(kc_max, 2) * round_up(nc_max, kr.nr));
  const size_t a_floats = static_cast<size_t>(std::max(round_up(kc_max, 2), a_depth(kr, kc_max)) * round_up(mc_max, kr.mr));
  float* packed_b = tls_pack_b.get(b_floats);
  float* packed_a = tls_pack_a.get(a_floats);
  float* staged_b = convert && kr.bf16_pairs ? tls_f32_b.get(b_floats) : packed_b;
  float* staged_a = convert && kr.bf16_pairs ? tls_f32_a.get(a_floats) : packed_a;
  alignas(64) float edge[16 * 64];  // one MR x NR tile for ragged edges (MR*NR <= 1024)
  const KernelSession session(kr);

  for (int64_t jc = n0; jc < n1; jc += nc_max) {
    const int64_t nc = std::min(nc_max, n1 - jc);
    for (int64_t pc = 0; pc < K; pc += kc_max) {
      const int64_t kc = std::min(kc_max, K - pc);
      // Panel strides in bytes: fp32 panels are kc deep, bf16-pair panels kc rounded up to even.
      const int64_t elem = kr.bf16_pairs ? 2 : 4, depth = kr.bf16_pairs ? round_up(kc, 2) : kc, adepth = a_depth(kr, kc);
      const float beta = pc == 0 ? g.beta : 1.0f;
      if (!(convert && pack_block_pairs(g.b, g.b2, g.k, true, kr, kr.nr, jc, nc, pc, kc,
                                        reinterpret_cast<uint16_t*>(packed_b)))) {
        pack_block(g.b, g.b2, g.k, true, kr, kr.nr, jc, nc, pc, kc, staged_b);
        if (convert) to_bf16(kr, staged_b, (nc + kr.nr - 1) / kr.nr, kr.nr, kc, packed_b);
      }
      for (int64_t ic = m0; ic < m1; ic += mc_max) {
        const int64_t mc = std::min(mc_max, m1 - ic);
        if (!(convert && pack_block_pairs(g.a, g.a2, g.k, false, kr, kr.mr, ic, mc, pc, kc,
                                          reinterpret_cast<uint16_t*>(packed_a)))) {
          pack_block(g.a, g.a2, g.k, false, kr, kr.mr, ic, mc, pc, kc, staged_a);
          if (convert) to_bf16(kr, staged_a, (mc + kr.mr - 1) / kr.mr, kr.mr, kc, packed_a);
        }
        for (int64_t jr = 0; jr < nc; jr += kr.nr) {
          const int64_t cols = std::min<int64_t>(kr.nr, nc - jr);
          const char* bp = reinterpret_cast<const char*>(packed_b) + jr * depth * elem;
          for (int64_t ir = 0; ir < mc; ir += kr.mr) {
            const int64_t rows = std::min<int64_t>(kr.mr, mc - ir);
            const char* ap = reinterpret_cast<const char*>(packed_a) + ir * adepth * elem;
            float* c = g.c + (ic + ir) * g.ldc + jc + jr;
            if (rows == kr.mr && cols == kr.nr) {
              kr.fn(kc, ap, bp, c, g.ldc, g.alpha, beta);
            } else {
              kr.fn(kc, ap, bp, edge, kr.nr, g.alpha, 0.0f);
              for (int64_t i = 0; i < rows; ++i)
                for (int64_t j = 0; j < cols; ++j) {
                  float v = edge[i * kr.nr + j];
                  c[i * g.ldc + j] = beta == 0.0f ? v : v + beta * c[i * g.ldc + j];
                }
            }
          }
        }
      }
    }
  }
}

// Packs columns [j0, j0 + cols) of a plain B operand, K range [p0, p0 + len), as bf16-pair panels
// of depth round_up(len, 2).
void pack_b_pairs(const GemmOperand& x, const GemmKernel& kr, int64_t j0, int64_t cols, int64_t p0, int64_t len,
                  uint16_t* dst) {
  if (pack_block_pairs(x, x, len, true, kr, kr.nr, j0, cols, p0, len, dst)) return;
  float* staged = tls_f32_b.get(static_cast<size_t>(round_up(len, 2) * round_up(cols, kr.nr)));
  pack_block(x, x, len, true, kr, kr.nr, j0, cols, p0, len, staged);
  to_bf16(kr, staged, (cols + kr.nr - 1) / kr.nr, kr.nr, len, dst);
}

// C[m0:m1, n0:n1] with B from pre-packed panels (the first g.k of K) and, for a second product,
// B2 packed here per K block. A tile whose K block spans both runs the kernel twice on the same A
// panel: the panels' part, then B2's part accumulated on top.
void gemm_range_panels(const GemmArgs& g, const GemmKernel& kr, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const GemmPanels& P = *g.b.panels[g.b.trans ? 1 : 0];
  const int64_t M = m1 - m0, N = n1 - n0, K = g.k + g.k2;
  if (M <= 0 || N <= 0) return;
  const int64_t kc_max = block_size(K, kr.kc, k_unit(kr));
  const GemmPanels* pa = kc_max == K ? g.a.panels[0] : nullptr;  // used with a single K block
  // Every block of A streams all of B's panels (for this K block) past it. Those usually stay in
  // L3 and A takes a modest share of L2; when they cannot (an LM head: 56 MB of panels), A takes
  // up to 1 MiB of L2 so that B comes from memory fewer times (the SmolLM2 head: +12%).
  const bool b_from_memory = N * kc_max * 2 > (int64_t{8} << 20);
  const int64_t mc_cap = b_from_memory ? std::max<int64_t>(kr.mc, (int64_t{1} << 20) / (round_up(kc_max, 2) * 2)) : 2 * kr.mc;
  const int64_t mc_max = block_size(M, mc_cap, kr.mr);
  uint16_t* packed_a = reinterpret_cast<uint16_t*>(tls_pack_a.get(static_cast<size_t>(a_depth(kr, kc_max) * round_up(mc_max, kr.mr))));
  uint16_t* packed_b2 = g.k2 ? reinterpret_cast<uint16_t*>(tls_pack_b.get(static_cast<size_t>(round_up(kc_max, 2) * round_up(N, kr.nr)))) : nullptr;
  alignas(64) float edge[16 * 64];
  const KernelSession session(kr);
  for (int64_t pc = 0; pc < K; pc += kc_max) {
    const int64_t kc = std::min(kc_max, K - pc), depth = round_up(kc, 2);
    // w_len is even, and a multiple of k_unit when B2 follows (gemm() checks): A2's part of a
    // block packed with A starts w_len * MR values in.
    const int64_t w_len = std::clamp<int64_t>(g.k - pc, 0, kc), b2_len = kc - w_len;
    const int64_t b2_depth = round_up(b2_len, 2);
    if (b2_len > 0) pack_b_pairs(g.b2, kr, n0, N, pc + w_len - g.k, b2_len, packed_b2);
    const float beta0 = pc == 0 ? g.beta : 1.0f;
    for (int64_t ic = m0; ic < m1; ic += mc_max) {
      const int64_t mc = std::min(mc_max, m1 - ic);
      // A's own part comes pre-packed (one K block, see gemm()): only A2's columns are packed here.
      const int64_t adepth = pa ? pa->depth : a_depth(kr, kc), a2_depth = a_depth(kr, b2_len);
      const uint16_t* a_block = pa ? pa->data.get() + ic * pa->depth : packed_a;
      if (pa) {
        if (b2_len > 0) pack_block_pairs(g.a2, g.a2, b2_len, false, kr, kr.mr, ic, mc, 0, b2_len, packed_a);
      } else if (!pack_block_pairs(g.a, g.a2, g.k, false, kr, kr.mr, ic, mc, pc, kc, packed_a)) {
        float* staged = tls_f32_a.get(static_cast<size_t>(depth * round_up(mc, kr.mr)));  // pair kernels only
        pack_block(g.a, g.a2, g.k, false, kr, kr.mr, ic, mc, pc, kc, staged);
        to_bf16(kr, staged, (mc + kr.mr - 1) / kr.mr, kr.mr, kc, packed_a);
      }
      for (int64_t jr = n0; jr < n1; jr += kr.nr) {
        const int64_t cols = std::min<int64_t>(kr.nr, n1 - jr);
        const uint16_t* bw = P.data.get() + (jr / kr.nr) * P.depth * kr.nr + pc * kr.nr;
        const uint16_t* b2 = packed_b2 + (jr - n0) * b2_depth;
        for (int64_t ir = 0; ir < mc; ir += kr.mr) {
          const int64_t rows = std::min<int64_t>(kr.mr, mc - ir);
          const uint16_t* ap = a_block + ir * adepth;
          // A2's part: past w_len / 2 pairs of MR rows in a packed block, or its own small block.
          const uint16_t* ap2 = pa ? packed_a + ir * a2_depth : ap + w_len * kr.mr;
          float* c = g.c + (ic + ir) * g.ldc + jr;
          const bool full = rows == kr.mr && cols == kr.nr;
          float* out = full ? c : edge;
          const int64_t ld = full ? g.ldc : kr.nr;
          const float beta = full ? beta0 : 0.0f;
          if (w_len > 0) kr.fn(w_len, ap, bw, out, ld, g.alpha, beta);
          if (b2_len > 0) kr.fn(b2_len, ap2, b2, out, ld, g.alpha, w_len > 0 ? 1.0f : beta);
          if (!full)
            for (int64_t i = 0; i < rows; ++i)
              for (int64_t j = 0; j < cols; ++j) {
                const float v = edge[i * kr.nr + j];
                c[i * g.ldc + j] = beta0 == 0.0f ? v : v + beta0 * c[i * g.ldc + j];
              }
        }
      }
    }
  }
}

GemmKernel kernel_for(Isa isa, bool bf16) {
  switch (isa) {
    case Isa::Amx:
      if (bf16 && cpu_features().amx_bf16) return gemm_kernel_amx(cpu_features().amx_emulated);
      [[fallthrough]];
    case Isa::Avx512Bf16: return bf16 ? gemm_kernel_avx512_bf16() : gemm_kernel_avx512();
    case Isa::Avx512: return gemm_kernel_avx512();
    case Isa::Avx2: return gemm_kernel_avx2();
    case Isa::Scalar: break;
  }
  return gemm_kernel_scalar();
}

// C = beta * C, for the degenerate K == 0 product.
void scale_c(const GemmArgs& g) {
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      float& c = g.c[i * g.ldc + j];
      c = g.beta == 0.0f ? 0.0f : g.beta * c;
    }
}

// Empty panels for op(X) (k x n) in panels of `nr`, 64-byte aligned (the kernel's aligned loads).
std::unique_ptr<GemmPanels> new_panels(int64_t n, int64_t k, int nr, int64_t depth_unit = 2) {
  auto p = std::make_unique<GemmPanels>();
  p->n = n, p->k = k, p->nr = nr, p->depth = round_up(k, depth_unit);
  p->bytes = static_cast<size_t>((n + nr - 1) / nr * p->depth * nr) * sizeof(uint16_t);
  p->data.reset(static_cast<uint16_t*>(std::aligned_alloc(64, (p->bytes + 63) / 64 * 64)));
  if (!p->data) fail(ErrorCode::OutOfMemory, "could not allocate " + std::to_string(p->bytes) + " bytes of packed panels");
  return p;
}

}  // namespace

void gemm(const GemmArgs& g, Isa isa, ThreadPool& pool) {
  if (g.m == 0 || g.n == 0) return;
  if (g.k + g.k2 == 0) return scale_c(g);
  GemmKernel kr = kernel_for(isa, g.bf16);
  if (kr.a_pack && (g.a.weights || g.a2.weights)) kr = gemm_kernel_avx512_bf16();  // a_pack reads dense A only
  // Threads pay off only when each gets a few micro-seconds of work.
  const double flops = 2.0 * g.m * g.n * (g.k + g.k2);
  int threads = flops < 4e6 ? 1 : pool.size();
  const GemmPanels* panels = g.b.panels[g.b.trans ? 1 : 0];
  if (panels && g.bf16 && kr.bf16_pairs && panels->nr == kr.nr && panels->k >= g.k && panels->n >= g.n && g.k % 2 == 0 &&
      (g.k2 == 0 || g.k % k_unit(kr) == 0)) {
    const GemmPanels* pa = g.a.panels[0];
    GemmArgs gp;
    if (pa && !(pa->nr == kr.mr && pa->k == g.k && pa->depth == a_depth(kr, g.k) && pa->n >= g.m && !g.a.trans &&
                (g.k2 == 0 || !g.a2.trans))) {
      gp = g;  // A's panels do not fit this product: pack A as usual
      gp.a.panels[0] = nullptr;
      return gemm(gp, isa, pool);
    }
    // B is ready: threads take rows (each packs only its own A) unless there are too few.
    const int64_t m_tiles = (g.m + kr.mr - 1) / kr.mr, n_tiles = (g.n + kr.nr - 1) / kr.nr;
    const bool split_m = m_tiles >= 4 * threads;
    const int64_t tiles = split_m ? m_tiles : n_tiles;
    threads = static_cast<int>(std::min<int64_t>(threads, tiles));
    pool.run(threads, [&](int t) {
      const int64_t t0 = tiles * t / threads, t1 = tiles * (t + 1) / threads;
      if (split_m)
        gemm_range_panels(g, kr, t0 * kr.mr, std::min(g.m, t1 * kr.mr), 0, g.n);
      else
        gemm_range_panels(g, kr, 0, g.m, t0 * kr.nr, std::min(g.n, t1 * kr.nr));
    });
    return;
  }
  // Split the dimension with more micro-tiles; keep ranges multiples of the tile.
  const int64_t n_tiles = (g.n + kr.nr - 1) / kr.nr, m_tiles = (g.m + kr.mr - 1) / kr.mr;
  const bool split_n = n_tiles >= m_tiles || n_tiles >= 4 * threads;
  const int64_t tiles = split_n ? n_tiles : m_tiles;
  threads = static_cast<int>(std::min<int64_t>(threads, tiles));
  pool.run(threads, [&](int t) {
    const int64_t t0 = tiles * t / threads, t1 = tiles * (t + 1) / threads;
    if (split_n)
      gemm_range(g, kr, 0, g.m, t0 * kr.nr, std::min(g.n, t1 * kr.nr));
    else
      gemm_range(g, kr, t0 * kr.mr, std::min(g.m, t1 * kr.mr), 0, g.n);
  });
}

std::unique_ptr<GemmPanels> gemm_pack_panels(const WeightView& w, bool trans, Isa isa, ThreadPool& pool) {
  const GemmKernel kr = kernel_for(isa, true);
  if (!kr.bf16_pairs) return nullptr;
  auto p = new_panels(trans ? w.rows : w.cols, trans ? w.cols : w.rows, kr.nr);
  const int64_t panels = (p->n + kr.nr - 1) / kr.nr;
  GemmOperand op;
  op.weights = &w;
  op.trans = trans;
  const int tasks = static_cast<int>(std::min<int64_t>(pool.size(), panels));
  pool.run(tasks, [&](int t) {
    float* staged = tls_f32_b.get(static_cast<size_t>(p->depth * kr.nr));
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
  auto p = new_panels(n, k, kr.nr);
  GemmOperand op;
  op.data = b, op.ld = ld, op.trans = trans;
  pack_block_pairs(op, op, k, true, kr, kr.nr, 0, n, 0, k, p->data.get());
  return p;
}

std::unique_ptr<GemmPanels> gemm_pack_a_panels(const float* a, int64_t ld, int64_t m, int64_t k, Isa isa, ThreadPool& pool) {
  const GemmKernel kr = kernel_for(isa, true);
  if (!kr.bf16_pairs || !kr.pair_pack_transpose) return nullptr;
  auto p = new_panels(m, k, kr.mr, kr.a_pack ? kr.k_unit : 2);
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

namespace {

// The element of an operand at non-K index r and K index p — op(A)[r, p] or op(B)[p, r] —
// decoded (and bf16-rounded in bf16 mode), for the reference.
float operand_at(const GemmOperand& x, bool b_side, int64_t r, int64_t p, bool bf16) {
  float v;
  const bool k_major = b_side ? !x.trans : x.trans;  // stored with K as the row index
  const int64_t row = k_major ? p : r, col = k_major ? r : p;
  if (x.weights)
    x.weights->decode(row, col, 1, &v);
  else
    v = x.data[row * x.ld + col];
  return bf16 ? round_to_bf16(v) : v;
}

}  // namespace

void gemm_reference(const GemmArgs& g) {
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < g.k; ++p)
        sum += static_cast<double>(operand_at(g.a, false, i, p, g.bf16)) * operand_at(g.b, true, j, p, g.bf16);
      for (int64_t p = 0; p < g.k2; ++p)
        sum += static_cast<double>(operand_at(g.a2, false, i, p, g.bf16)) * operand_at(g.b2, true, j, p, g.bf16);
      float& c = g.c[i * g.ldc + j];
      c = static_cast<float>(g.alpha * sum + (g.beta == 0.0f ? 0.0 : static_cast<double>(g.beta) * c));
    }
}

}  // namespace tk
