// GEMM driver: the BLIS loop nest (NC -> KC -> MC -> NR -> MR) around a per-ISA micro-kernel.
// Packing (backend/cpu/gemm_packing.*) copies a KC x NC block of op(B) and an MC x KC block of op(A) into
// contiguous panels in the order the micro-kernel reads them — transposing, decoding compressed
// weights and rounding to bf16 on the way — so the kernel streams memory linearly whatever the
// operands' layout. Threads split C into disjoint column (or row) ranges and each runs the whole
// loop nest on its range, so every C element is summed in one fixed order: results do not depend
// on scheduling.
#include "../../ops/gemm.h"

#include <algorithm>
#include <numeric>

#include "../../core/float16.h"
#include "../../ops/gguf_quant.h"
#include "gemm_packing.h"
#include "kernels.h"

namespace tk {
namespace cpu {
namespace {

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

// The K block a product takes: kr.kc at most, a multiple of its k_unit. With K-quant weights on
// either side, whole 256-element super-blocks: the AMX kernel's KC of 384 (352 over K = 2048)
// split most of them, and a split block is decoded whole by the scalar path, once per piece.
int64_t k_block(const GemmArgs& g, const GemmKernel& kr, int64_t K) {
  auto super = [](const GemmOperand& x) {
    return x.weights && is_gguf(x.weights->format) && gguf_block_elements(gguf_type(x.weights->format)) == kGgufSuperBlock;
  };
  if (!super(g.a) && !super(g.b)) return block_size(K, kr.kc, k_unit(kr));
  const int64_t unit = std::lcm(k_unit(kr), int64_t{kGgufSuperBlock});
  return block_size(K, std::max(unit, kr.kc / unit * unit), unit);
}

// Runs the whole loop nest for C[m0:m1, n0:n1].
void gemm_range(const GemmArgs& g, const GemmKernel& kr, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int64_t M = m1 - m0, N = n1 - n0, K = g.k + g.k2;
  if (M <= 0 || N <= 0) return;
  const int64_t nc_max = block_size(N, kr.nc, kr.nr);
  const int64_t kc_max = k_block(g, kr, K);
  const int64_t mc_max = block_size(M, kr.mc, kr.mr);
  // In bf16 mode panels are first packed as fp32, then converted (in place for the fp32 kernel).
  const bool convert = g.bf16;
  const size_t b_floats = static_cast<size_t>(round_up(kc_max, 2) * round_up(nc_max, kr.nr));
  const size_t a_floats = static_cast<size_t>(std::max(round_up(kc_max, 2), a_depth(kr, kc_max)) * round_up(mc_max, kr.mr));
  float* packed_b = scratch(ScratchSlot::PackB, b_floats);
  float* packed_a = scratch(ScratchSlot::PackA, a_floats);
  float* staged_b = convert && kr.bf16_pairs ? scratch(ScratchSlot::F32B, b_floats) : packed_b;
  float* staged_a = convert && kr.bf16_pairs ? scratch(ScratchSlot::F32A, a_floats) : packed_a;
  float* wide_a = kr.a_widen ? scratch(ScratchSlot::WideA, a_floats + a_widen_slack) : nullptr;
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
        if (wide_a) kr.a_widen(reinterpret_cast<const uint16_t*>(packed_a), (mc + kr.mr - 1) / kr.mr, adepth, wide_a);
        const char* a_panels = wide_a ? reinterpret_cast<const char*>(wide_a) : reinterpret_cast<const char*>(packed_a);
        const int64_t a_elem = wide_a ? 4 : elem;
        for (int64_t jr = 0; jr < nc; jr += kr.nr) {
          const int64_t cols = std::min<int64_t>(kr.nr, nc - jr);
          const char* bp = reinterpret_cast<const char*>(packed_b) + jr * depth * elem;
          for (int64_t ir = 0; ir < mc; ir += kr.mr) {
            const int64_t rows = std::min<int64_t>(kr.mr, mc - ir);
            const char* ap = a_panels + ir * adepth * a_elem;
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

// C[m0:m1, n0:n1] with B from pre-packed panels (the first g.k of K) and, for a second product,
// B2 packed here per K block. A tile whose K block spans both runs the kernel twice on the same A
// panel: the panels' part, then B2's part accumulated on top.
void gemm_range_panels(const GemmArgs& g, const GemmKernel& kr, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const GemmPanels& P = *g.b.panels[g.b.trans ? 1 : 0];
  const int64_t M = m1 - m0, N = n1 - n0, K = g.k + g.k2;
  if (M <= 0 || N <= 0) return;
  const int64_t kc_max = block_size(K, kr.kc, k_unit(kr));
  // A pre-packed (a layer's input shared by its products) serves every K block: in both A layouts
  // a panel's block at pc starts pc · MR values in. Not where a kernel widens A (it would widen the
  // whole depth once per block), nor where A2's columns straddle two blocks (they are packed per
  // product, from column 0 of the last block).
  const bool a2_in_last_block = g.k2 == 0 || (K - 1) / kc_max * kc_max <= g.k;
  const GemmPanels* pa = kc_max == K || (!kr.a_widen && a2_in_last_block) ? g.a.panels[0] : nullptr;
  // Every block of A streams all of B's panels (for this K block) past it. Those usually stay in
  // L3 and A takes a modest share of L2; when they cannot (an LM head: 56 MB of panels), A takes
  // up to 1 MiB of L2 so that B comes from memory fewer times (the SmolLM2 head: +12%).
  const bool b_from_memory = N * kc_max * 2 > (int64_t{8} << 20);
  const int64_t mc_cap = b_from_memory ? std::max<int64_t>(kr.mc, (int64_t{1} << 20) / (round_up(kc_max, 2) * 2)) : 2 * kr.mc;
  const int64_t mc_max = block_size(M, mc_cap, kr.mr);
  uint16_t* packed_a = reinterpret_cast<uint16_t*>(scratch(ScratchSlot::PackA, static_cast<size_t>(a_depth(kr, kc_max) * round_up(mc_max, kr.mr))));
  uint16_t* packed_b2 = g.k2 ? reinterpret_cast<uint16_t*>(scratch(ScratchSlot::PackB, static_cast<size_t>(round_up(kc_max, 2) * round_up(N, kr.nr)))) : nullptr;
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
      // A's own part comes pre-packed (see gemm()): only A2's columns are packed here.
      const int64_t adepth = pa ? pa->depth : a_depth(kr, kc), a2_depth = a_depth(kr, b2_len);
      const uint16_t* a_block = pa ? pa->data.get() + ic * pa->depth + pc * kr.mr : packed_a;
      if (pa) {
        if (b2_len > 0) pack_block_pairs(g.a2, g.a2, b2_len, false, kr, kr.mr, ic, mc, 0, b2_len, packed_a);
      } else if (!pack_block_pairs(g.a, g.a2, g.k, false, kr, kr.mr, ic, mc, pc, kc, packed_a)) {
        float* staged = scratch(ScratchSlot::F32A, static_cast<size_t>(depth * round_up(mc, kr.mr)));  // pair kernels only
        pack_block(g.a, g.a2, g.k, false, kr, kr.mr, ic, mc, pc, kc, staged);
        to_bf16(kr, staged, (mc + kr.mr - 1) / kr.mr, kr.mr, kc, packed_a);
      }
      // A kernel with a_widen reads an fp32 copy of these panels, at the same element offsets.
      const float *wide = nullptr, *wide2 = nullptr;
      if (kr.a_widen) {
        const int64_t a_panels = (mc + kr.mr - 1) / kr.mr;
        float* w = scratch(ScratchSlot::WideA, static_cast<size_t>(a_panels * kr.mr * adepth + a_widen_slack));
        kr.a_widen(a_block, a_panels, adepth, w);
        wide = w;
        if (pa && b2_len > 0) {
          float* w2 = scratch(ScratchSlot::WideA2, static_cast<size_t>(a_panels * kr.mr * a2_depth + a_widen_slack));
          kr.a_widen(packed_a, a_panels, a2_depth, w2);
          wide2 = w2;
        }
      }
      auto a_at = [](const uint16_t* pairs, const float* wider, int64_t offset) -> const void* {
        return wider ? static_cast<const void*>(wider + offset) : pairs + offset;
      };
      for (int64_t jr = n0; jr < n1; jr += kr.nr) {
        const int64_t cols = std::min<int64_t>(kr.nr, n1 - jr);
        const uint16_t* bw = P.data.get() + ((g.b.panel_n0 + jr) / kr.nr) * P.depth * kr.nr + (g.b.panel_k0 + pc) * kr.nr;
        const uint16_t* b2 = packed_b2 + (jr - n0) * b2_depth;
        for (int64_t ir = 0; ir < mc; ir += kr.mr) {
          const int64_t rows = std::min<int64_t>(kr.mr, mc - ir);
          const void* ap = a_at(a_block, wide, ir * adepth);
          // A2's part: past w_len / 2 pairs of MR rows in a packed block, or its own small block.
          const void* ap2 = pa ? a_at(packed_a, wide2, ir * a2_depth) : a_at(a_block, wide, ir * adepth + w_len * kr.mr);
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

// C = beta * C, for the degenerate K == 0 product.
void scale_c(const GemmArgs& g) {
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      float& c = g.c[i * g.ldc + j];
      c = g.beta == 0.0f ? 0.0f : g.beta * c;
    }
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
  if (panels && g.bf16 && kr.bf16_pairs && panels->nr == kr.nr && panels->k >= g.b.panel_k0 + g.k &&
      panels->n >= g.b.panel_n0 + g.n && g.k % 2 == 0 && g.b.panel_k0 % 2 == 0 && g.b.panel_n0 % kr.nr == 0 &&
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

}  // namespace cpu
}  // namespace tk
