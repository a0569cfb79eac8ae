// fp32 GEMM driver: the BLIS loop nest (NC -> KC -> MC -> NR -> MR) around a per-ISA micro-kernel.
// Packing copies a KC x NC block of op(B) and an MC x KC block of op(A) into contiguous panels in
// the order the micro-kernel reads them, so the kernel streams memory linearly whatever the
// operands' layout or transposition. Threads split C into disjoint column (or row) ranges and each
// runs the whole loop nest on its range, so every C element is summed in one fixed order:
// results do not depend on scheduling.
#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "../core/error.h"
#include "cpu/gemm_kernels.h"

namespace tk {
namespace {

// Per-thread packing buffers, grown on demand and reused across calls.
struct PackBuffer {
  float* data = nullptr;
  size_t capacity = 0;
  ~PackBuffer() { std::free(data); }
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
thread_local PackBuffer tls_pack_a, tls_pack_b;

// Packs op(A)[i0 : i0+mc, p0 : p0+kc] into ceil(mc/MR) panels of kc x MR, zero-padding the last.
void pack_a(const GemmArgs& g, const GemmKernel& kr, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst) {
  const int mr = kr.mr;
  for (int64_t ir = 0; ir < mc; ir += mr) {
    const int64_t rows = std::min<int64_t>(mr, mc - ir);
    float* panel = dst + ir * kc;
    if (g.trans_a) {  // op(A)[i, p] = A[p, i]: each k step reads `rows` contiguous values
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = g.a + (p0 + p) * g.lda + i0 + ir;
        float* out = panel + p * mr;
        for (int64_t i = 0; i < rows; ++i) out[i] = src[i];
        for (int64_t i = rows; i < mr; ++i) out[i] = 0.0f;
      }
    } else {  // op(A)[i, p] = A[i, p]: a transposing copy
      kr.transpose_pack(g.a + (i0 + ir) * g.lda + p0, g.lda, rows, kc, mr, panel);
    }
  }
}

// Packs op(B)[p0 : p0+kc, j0 : j0+nc] into ceil(nc/NR) panels of kc x NR, zero-padding the last.
void pack_b(const GemmArgs& g, const GemmKernel& kr, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  const int nr = kr.nr;
  for (int64_t jr = 0; jr < nc; jr += nr) {
    const int64_t cols = std::min<int64_t>(nr, nc - jr);
    float* panel = dst + jr * kc;
    if (g.trans_b) {  // op(B)[p, j] = B[j, p]: the forward X·Wᵀ case, a transposing copy
      kr.transpose_pack(g.b + (j0 + jr) * g.ldb + p0, g.ldb, cols, kc, nr, panel);
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = g.b + (p0 + p) * g.ldb + j0 + jr;
        float* out = panel + p * nr;
        std::memcpy(out, src, cols * sizeof(float));
        for (int64_t j = cols; j < nr; ++j) out[j] = 0.0f;
      }
    }
  }
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Splits `total` into `parts` nearly equal block sizes that are multiples of `unit`.
int64_t block_size(int64_t total, int64_t max_block, int64_t unit) {
  int64_t blocks = (total + max_block - 1) / max_block;
  return round_up((total + blocks - 1) / blocks, unit);
}

// Runs the whole loop nest for C[m0:m1, n0:n1].
void gemm_range(const GemmArgs& g, const GemmKernel& kr, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int64_t M = m1 - m0, N = n1 - n0;
  if (M <= 0 || N <= 0) return;
  const int64_t nc_max = block_size(N, kr.nc, kr.nr);
  const int64_t kc_max = block_size(g.k, kr.kc, 1);
  const int64_t mc_max = block_size(M, kr.mc, kr.mr);
  float* packed_b = tls_pack_b.get(static_cast<size_t>(kc_max * round_up(nc_max, kr.nr)));
  float* packed_a = tls_pack_a.get(static_cast<size_t>(kc_max * round_up(mc_max, kr.mr)));
  alignas(64) float edge[16 * 64];  // one MR x NR tile for ragged edges (MR*NR <= 1024)

  for (int64_t jc = n0; jc < n1; jc += nc_max) {
    const int64_t nc = std::min(nc_max, n1 - jc);
    for (int64_t pc = 0; pc < g.k; pc += kc_max) {
      const int64_t kc = std::min(kc_max, g.k - pc);
      const float beta = pc == 0 ? g.beta : 1.0f;
      pack_b(g, kr, pc, kc, jc, nc, packed_b);
      for (int64_t ic = m0; ic < m1; ic += mc_max) {
        const int64_t mc = std::min(mc_max, m1 - ic);
        pack_a(g, kr, ic, mc, pc, kc, packed_a);
        for (int64_t jr = 0; jr < nc; jr += kr.nr) {
          const int64_t cols = std::min<int64_t>(kr.nr, nc - jr);
          const float* bp = packed_b + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += kr.mr) {
            const int64_t rows = std::min<int64_t>(kr.mr, mc - ir);
            const float* ap = packed_a + ir * kc;
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

GemmKernel kernel_for(Isa isa) {
  switch (isa) {
    case Isa::Amx:
    case Isa::Avx512Bf16:
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

}  // namespace

void gemm_f32(const GemmArgs& g, Isa isa, ThreadPool& pool) {
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0) return scale_c(g);
  const GemmKernel kr = kernel_for(isa);
  // Threads pay off only when each gets a few micro-seconds of work.
  const double flops = 2.0 * g.m * g.n * g.k;
  int threads = flops < 4e6 ? 1 : pool.size();
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

void gemm_f32_reference(const GemmArgs& g) {
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < g.k; ++p) {
        const double a = g.trans_a ? g.a[p * g.lda + i] : g.a[i * g.lda + p];
        const double b = g.trans_b ? g.b[j * g.ldb + p] : g.b[p * g.ldb + j];
        sum += a * b;
      }
      float& c = g.c[i * g.ldc + j];
      c = static_cast<float>(g.alpha * sum + (g.beta == 0.0f ? 0.0 : static_cast<double>(g.beta) * c));
    }
}

}  // namespace tk
