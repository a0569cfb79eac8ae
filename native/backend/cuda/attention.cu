// Causal grouped-query attention on the GPU (ops/attention.h), flash-style: no n x n matrix.
// Forward: a block of 4 warps takes 4 consecutive queries of one head; tiles of 32 keys and
// values go through shared memory, each lane scores one key of the tile (a dot product over
// the head, the query broadcast from shared memory), the softmax is rescaled online, and each
// lane accumulates its columns of the output. Backward recomputes: a forward pass saves each
// query's log-sum-exp and D = dO·O; then one kernel gives dq (warp per query, over key tiles)
// and one gives dk and dv (warp per key, over query tiles and the query heads of its group), so
// every gradient is written by one warp: no atomics, the same bits on every run.
// Masks: a query sees keys from its sequence's first row (packed rows: AttentionSegments), and
// with a sliding window only the last `window` positions; bf16 rounds the products' operands.
// Soft-capping (Gemma 2) maps each score to cap·tanh(score / cap) where it is formed, and the
// backward's dS gains the factor 1 − tanh².
#include <algorithm>
#include <string>
#include <vector>

#include "cuda_context.cuh"
#include "device_math.cuh"
#include "kernels.cuh"

namespace tk {
namespace cuda {
namespace {

constexpr int kRows = 4;   // queries (forward, dq) or keys (dk, dv) per block: one per warp
constexpr int kTile = 32;  // keys (or queries) per shared-memory tile: one per lane

struct Shape {
  const float *q, *k, *v;
  int64_t nq;              // query rows
  int hq, hkv, d;
  float scale;
  float softcap;           // > 0: scores soft-capped
  int64_t window, offset;  // query row i is at position offset + i; keys are indexed by position
  const int32_t* row_start;  // [nq] first row of each row's sequence (null: 0)
  const int32_t* row_end;    // [nq] one past its last row (null: nq)
  bool bf16;
  __host__ __device__ int64_t ldq() const { return static_cast<int64_t>(hq) * d; }
  __host__ __device__ int64_t ldkv() const { return static_cast<int64_t>(hkv) * d; }
};

__device__ inline float maybe_bf16(float v, bool bf16) { return bf16 ? round_bf16(v) : v; }

// The score of a dot product q·k: scaled, then soft-capped where asked; *slope (may be null)
// gets d score / d (scaled dot), 1 − tanh² (1 without a cap).
__device__ inline float score_of(const Shape& s, float dot, float* slope) {
  const float x = dot * s.scale;
  if (s.softcap <= 0) {
    if (slope) *slope = 1.0f;
    return x;
  }
  const float t = tanhf(x / s.softcap);
  if (slope) *slope = 1.0f - t * t;
  return s.softcap * t;
}

// Keys [lo, hi] that query row i sees.
__device__ inline void key_range(const Shape& s, int64_t i, int64_t& lo, int64_t& hi) {
  hi = s.offset + i;
  lo = s.row_start ? s.row_start[i] : 0;
  if (s.window > 0 && hi - s.window + 1 > lo) lo = hi - s.window + 1;
}

// The keys [lo, hi] of warp w's query and [blo, bhi], those of any query of the block (rows i0..).
__device__ inline void block_key_range(const Shape& s, int64_t i0, int w, int64_t& lo, int64_t& hi, int64_t& blo, int64_t& bhi) {
  lo = 0, hi = -1, blo = INT64_MAX, bhi = -1;
  for (int r = 0; r < kRows && i0 + r < s.nq; ++r) {
    int64_t a, b;
    key_range(s, i0 + r, a, b);
    blo = a < blo ? a : blo, bhi = b > bhi ? b : bhi;
    if (r == w) lo = a, hi = b;
  }
}

// Queries [j, hi] that see key j (backward: offset 0).
__device__ inline int64_t last_query(const Shape& s, int64_t j) {
  int64_t hi = (s.row_end ? s.row_end[j] : s.nq) - 1;
  if (s.window > 0 && j + s.window - 1 < hi) hi = j + s.window - 1;
  return hi;
}

// Rows [first, first + kTile) of a [*, ld] matrix's head columns into a padded shared tile.
__device__ inline void load_tile(float* tile, const float* m, int64_t ld, int64_t col, int64_t first, int64_t last, int d, bool bf16) {
  for (int idx = threadIdx.x; idx < kTile * d; idx += blockDim.x) {
    const int r = idx / d, c = idx % d;
    const int64_t row = first + r;
    tile[r * (d + 1) + c] = row <= last ? maybe_bf16(m[row * ld + col + c], bf16) : 0.0f;
  }
}

// Forward (and the backward's statistics: lse and delta = dO·O instead of the output).
template <int E>
__global__ void forward_kernel(Shape s, float* out, float* lse, float* delta, const float* dout) {
  extern __shared__ float smem[];
  const int d = s.d, lane = threadIdx.x % kWarp, w = threadIdx.x / kWarp, h = blockIdx.y, g = h / (s.hq / s.hkv);
  float *ks = smem, *vs = ks + kTile * (d + 1), *qs = vs + kTile * (d + 1) + w * d;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kRows, i = i0 + w;
  const bool valid = i < s.nq;
  int64_t lo, hi, blo, bhi;
  block_key_range(s, i0, w, lo, hi, blo, bhi);
  if (valid)
    for (int c = lane; c < d; c += kWarp) qs[c] = maybe_bf16(s.q[i * s.ldq() + static_cast<int64_t>(h) * d + c], s.bf16);
  float acc[E];
  for (int e = 0; e < E; ++e) acc[e] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  for (int64_t j0 = blo; j0 <= bhi; j0 += kTile) {
    __syncthreads();
    load_tile(ks, s.k, s.ldkv(), static_cast<int64_t>(g) * d, j0, bhi, d, s.bf16);
    load_tile(vs, s.v, s.ldkv(), static_cast<int64_t>(g) * d, j0, bhi, d, s.bf16);
    __syncthreads();
    if (!valid || j0 > hi || j0 + kTile - 1 < lo) continue;  // warp-uniform
    const int64_t j = j0 + lane;
    const bool seen = j >= lo && j <= hi;
    float score = -INFINITY;
    if (seen) {
      float dot = 0.0f;
      for (int c = 0; c < d; ++c) dot += qs[c] * ks[lane * (d + 1) + c];
      score = score_of(s, dot, nullptr);
    }
    const float m_new = fmaxf(m, warp_max(score));
    const float p = seen ? expf(score - m_new) : 0.0f, corr = expf(m - m_new);
    l = l * corr + warp_sum(p);
    const float pb = maybe_bf16(p, s.bf16);
    for (int e = 0; e < E; ++e) acc[e] *= corr;
    for (int jj = 0; jj < kTile; ++jj) {
      const float pj = __shfl_sync(0xffffffffu, pb, jj);
      for (int e = 0; e < E; ++e) {
        const int c = lane + e * kWarp;
        if (c < d) acc[e] += pj * vs[jj * (d + 1) + c];
      }
    }
    m = m_new;
  }
  if (!valid) return;
  const int64_t base = i * s.ldq() + static_cast<int64_t>(h) * d;
  float dot = 0.0f;
  for (int e = 0; e < E; ++e) {
    const int c = lane + e * kWarp;
    if (c >= d) continue;
    const float o = acc[e] / l;
    if (out) out[base + c] = o;
    if (dout) dot += dout[base + c] * o;
  }
  if (lse) {
    dot = warp_sum(dot);
    if (lane == 0) lse[i * s.hq + h] = m + logf(l), delta[i * s.hq + h] = dot;
  }
}

template <int E>
__global__ void dq_kernel(Shape s, const float* dout, const float* lse, const float* delta, float* dq) {
  extern __shared__ float smem[];
  const int d = s.d, lane = threadIdx.x % kWarp, w = threadIdx.x / kWarp, h = blockIdx.y, g = h / (s.hq / s.hkv);
  float *ks = smem, *vs = ks + kTile * (d + 1), *qs = vs + kTile * (d + 1) + w * 2 * d, *dos = qs + d;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kRows, i = i0 + w;
  const bool valid = i < s.nq;
  int64_t lo, hi, blo, bhi;
  block_key_range(s, i0, w, lo, hi, blo, bhi);
  const int64_t base = i * s.ldq() + static_cast<int64_t>(h) * d;
  float L = 0.0f, D = 0.0f;
  if (valid) {
    for (int c = lane; c < d; c += kWarp) qs[c] = maybe_bf16(s.q[base + c], s.bf16), dos[c] = maybe_bf16(dout[base + c], s.bf16);
    L = lse[i * s.hq + h], D = delta[i * s.hq + h];
  }
  float acc[E];
  for (int e = 0; e < E; ++e) acc[e] = 0.0f;
  for (int64_t j0 = blo; j0 <= bhi; j0 += kTile) {
    __syncthreads();
    load_tile(ks, s.k, s.ldkv(), static_cast<int64_t>(g) * d, j0, bhi, d, s.bf16);
    load_tile(vs, s.v, s.ldkv(), static_cast<int64_t>(g) * d, j0, bhi, d, s.bf16);
    __syncthreads();
    if (!valid || j0 > hi || j0 + kTile - 1 < lo) continue;
    const int64_t j = j0 + lane;
    float ds = 0.0f;
    if (j >= lo && j <= hi) {
      float dot = 0.0f, dp = 0.0f;
      for (int c = 0; c < d; ++c) dot += qs[c] * ks[lane * (d + 1) + c], dp += dos[c] * vs[lane * (d + 1) + c];
      float slope;
      const float p = expf(score_of(s, dot, &slope) - L);
      ds = maybe_bf16(p * (dp - D) * slope, s.bf16);
    }
    for (int jj = 0; jj < kTile; ++jj) {
      const float dj = __shfl_sync(0xffffffffu, ds, jj);
      for (int e = 0; e < E; ++e) {
        const int c = lane + e * kWarp;
        if (c < d) acc[e] += dj * ks[jj * (d + 1) + c];
      }
    }
  }
  if (!valid) return;
  for (int e = 0; e < E; ++e) {
    const int c = lane + e * kWarp;
    if (c < d) dq[base + c] = acc[e] * s.scale;
  }
}

template <int E>
__global__ void dkdv_kernel(Shape s, const float* dout, const float* lse, const float* delta, float* dk, float* dv) {
  extern __shared__ float smem[];
  const int d = s.d, lane = threadIdx.x % kWarp, w = threadIdx.x / kWarp, g = blockIdx.y, group = s.hq / s.hkv;
  float *qt = smem, *dot_ = qt + kTile * (d + 1), *kw = dot_ + kTile * (d + 1) + w * 2 * d, *vw = kw + d;
  float* lt = smem + 2 * kTile * (d + 1) + kRows * 2 * d;  // the tile's lse and delta: 2 x kTile
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * kRows, j = j0 + w;
  const bool valid = j < s.nq;
  int64_t hi = -1, bhi = -1;
  for (int r = 0; r < kRows && j0 + r < s.nq; ++r) {
    const int64_t b = last_query(s, j0 + r);
    bhi = b > bhi ? b : bhi;
    if (r == w) hi = b;
  }
  const int64_t kvbase = j * s.ldkv() + static_cast<int64_t>(g) * d;
  if (valid)
    for (int c = lane; c < d; c += kWarp) kw[c] = maybe_bf16(s.k[kvbase + c], s.bf16), vw[c] = maybe_bf16(s.v[kvbase + c], s.bf16);
  float gk[E], gv[E];
  for (int e = 0; e < E; ++e) gk[e] = gv[e] = 0.0f;
  for (int h = g * group; h < (g + 1) * group; ++h) {
    for (int64_t t0 = j0; t0 <= bhi; t0 += kTile) {
      __syncthreads();
      load_tile(qt, s.q, s.ldq(), static_cast<int64_t>(h) * d, t0, bhi, d, s.bf16);
      load_tile(dot_, dout, s.ldq(), static_cast<int64_t>(h) * d, t0, bhi, d, s.bf16);
      if (threadIdx.x < kTile) {
        const int64_t row = t0 + threadIdx.x;
        lt[threadIdx.x] = row <= bhi ? lse[row * s.hq + h] : 0.0f;
        lt[kTile + threadIdx.x] = row <= bhi ? delta[row * s.hq + h] : 0.0f;
      }
      __syncthreads();
      if (!valid || t0 > hi || t0 + kTile - 1 < j) continue;
      const int64_t i = t0 + lane;
      float p = 0.0f, ds = 0.0f;
      if (i >= j && i <= hi) {
        float dot = 0.0f, dp = 0.0f;
        for (int c = 0; c < d; ++c) dot += qt[lane * (d + 1) + c] * kw[c], dp += dot_[lane * (d + 1) + c] * vw[c];
        float slope;
        p = expf(score_of(s, dot, &slope) - lt[lane]);
        ds = maybe_bf16(p * (dp - lt[kTile + lane]) * slope, s.bf16);
        p = maybe_bf16(p, s.bf16);
      }
      for (int ii = 0; ii < kTile; ++ii) {
        const float pi = __shfl_sync(0xffffffffu, p, ii), di = __shfl_sync(0xffffffffu, ds, ii);
        for (int e = 0; e < E; ++e) {
          const int c = lane + e * kWarp;
          if (c < d) gv[e] += pi * dot_[ii * (d + 1) + c], gk[e] += di * qt[ii * (d + 1) + c];
        }
      }
    }
  }
  if (!valid) return;
  for (int e = 0; e < E; ++e) {
    const int c = lane + e * kWarp;
    if (c < d) dk[kvbase + c] = gk[e] * s.scale, dv[kvbase + c] = gv[e];
  }
}

void check_shape(int64_t hq, int64_t hkv, int64_t d) {
  check_arg(hkv >= 1 && hq % hkv == 0, "attention: expected qHeads divisible by kvHeads");
  check_arg(d >= 1 && d <= 256, "attention: the CUDA backend takes a head size up to 256 but received " + std::to_string(d));
}

template <class Kernel, class... Args>
void launch(Kernel kernel, dim3 grid, size_t smem, cudaStream_t stream, const char* name, Args... args) {
  if (smem > 48 * 1024) TK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  kernel<<<grid, kRows * kWarp, smem, stream>>>(args...);
  TK_LAUNCHED(name);
}

// Head columns per lane: the kernels' template argument.
int width(int64_t d) { return d <= 32 ? 1 : d <= 64 ? 2 : d <= 128 ? 4 : 8; }

size_t tile_bytes(int64_t d) { return static_cast<size_t>(2 * kTile * (d + 1)) * sizeof(float); }

// Shape of a packed batch: each row's sequence bounds, from the segments (host data).
Shape packed(CudaBackend& b, const float* q, const float* k, const float* v, const AttentionSegments& segments, int64_t hq,
             int64_t hkv, int64_t d, AttentionScores scores, bool bf16) {
  int64_t rows = 0;
  for (auto [t0, len] : segments) rows = std::max(rows, t0 + len);
  std::vector<int32_t> start(static_cast<size_t>(rows), 0), end(static_cast<size_t>(rows), 0);
  for (auto [t0, len] : segments)
    for (int64_t r = t0; r < t0 + len; ++r) start[r] = static_cast<int32_t>(t0), end[r] = static_cast<int32_t>(t0 + len);
  Shape s{q, k, v, rows, static_cast<int>(hq), static_cast<int>(hkv), static_cast<int>(d), 1.0f / std::sqrt(static_cast<float>(d)),
          scores.softcap, scores.window, 0, nullptr, nullptr, bf16};
  if (rows) {
    s.row_start = static_cast<const int32_t*>(b.upload(kRowStart, start.data(), start.size() * 4));
    s.row_end = static_cast<const int32_t*>(b.upload(kRowEnd, end.data(), end.size() * 4));
  }
  return s;
}

template <int E>
void forward_with(CudaBackend& b, const Shape& s, float* out) {
  const dim3 grid(grid_for(s.nq, kRows), static_cast<unsigned>(s.hq));
  launch(forward_kernel<E>, grid, tile_bytes(s.d) + kRows * s.d * sizeof(float), b.stream(), "attention forward", s, out,
         static_cast<float*>(nullptr), static_cast<float*>(nullptr), static_cast<const float*>(nullptr));
}

void forward(CudaBackend& b, const Shape& s, float* out) {
  if (s.nq <= 0) return;
  switch (width(s.d)) {
    case 1: return forward_with<1>(b, s, out);
    case 2: return forward_with<2>(b, s, out);
    case 4: return forward_with<4>(b, s, out);
    default: return forward_with<8>(b, s, out);
  }
}

template <int E>
void backward_with(CudaBackend& b, const Shape& s, const float* dout, float* lse, float* delta, float* dq, float* dk, float* dv) {
  const int64_t d = s.d;
  const dim3 qgrid(grid_for(s.nq, kRows), static_cast<unsigned>(s.hq)), kgrid(grid_for(s.nq, kRows), static_cast<unsigned>(s.hkv));
  launch(forward_kernel<E>, qgrid, tile_bytes(d) + kRows * d * sizeof(float), b.stream(), "attention statistics", s,
         static_cast<float*>(nullptr), lse, delta, dout);
  launch(dq_kernel<E>, qgrid, tile_bytes(d) + 2 * kRows * d * sizeof(float), b.stream(), "attention dq", s, dout,
         static_cast<const float*>(lse), static_cast<const float*>(delta), dq);
  launch(dkdv_kernel<E>, kgrid, tile_bytes(d) + (2 * kRows * d + 2 * kTile) * sizeof(float), b.stream(), "attention dk dv", s,
         dout, static_cast<const float*>(lse), static_cast<const float*>(delta), dk, dv);
}

}  // namespace

void attention_forward(const ExecContext& x, const float* q, const float* k, const float* v, const AttentionSegments& segments,
                       int64_t hq, int64_t hkv, int64_t d, float* out, float* /*lse: the backward recomputes its own*/,
                       bool bf16, AttentionScores scores) {
  check_shape(hq, hkv, d);
  CudaBackend& b = backend_of(x);
  forward(b, packed(b, q, k, v, segments, hq, hkv, d, scores, bf16), out);
}

void attention_forward_cached(const ExecContext& x, const float* q, const float* k, const float* v, int64_t n, int64_t offset,
                              int64_t hq, int64_t hkv, int64_t d, float* out, bool bf16, AttentionScores scores) {
  check_shape(hq, hkv, d);
  CudaBackend& b = backend_of(x);
  const Shape s{q, k, v, n, static_cast<int>(hq), static_cast<int>(hkv), static_cast<int>(d), 1.0f / std::sqrt(static_cast<float>(d)),
                scores.softcap, scores.window, offset, nullptr, nullptr, bf16};
  forward(b, s, out);
}

void attention_backward(const ExecContext& x, const float* q, const float* k, const float* v, const float* /*out*/,
                        const float* /*lse*/, const float* dout,
                        const AttentionSegments& segments, int64_t hq, int64_t hkv, int64_t d, float* dq, float* dk, float* dv,
                        bool bf16, AttentionScores scores) {
  check_shape(hq, hkv, d);
  CudaBackend& b = backend_of(x);
  const Shape s = packed(b, q, k, v, segments, hq, hkv, d, scores, bf16);
  if (s.nq <= 0) return;
  auto* stats = static_cast<float*>(b.scratch(kStats, static_cast<size_t>(2 * s.nq * hq) * sizeof(float)));
  float *lse = stats, *delta = stats + s.nq * hq;
  switch (width(d)) {
    case 1: return backward_with<1>(b, s, dout, lse, delta, dq, dk, dv);
    case 2: return backward_with<2>(b, s, dout, lse, delta, dq, dk, dv);
    case 4: return backward_with<4>(b, s, dout, lse, delta, dq, dk, dv);
    default: return backward_with<8>(b, s, dout, lse, delta, dq, dk, dv);
  }
}

}  // namespace cuda
}  // namespace tk
