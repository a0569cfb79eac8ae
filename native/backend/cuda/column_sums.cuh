// dst[c] += Σ_r value(r, c): the parameter gradients of norms and biases (sums over every token).
// Why two passes instead of atomics: fp32 atomics add in whatever order the threads arrive, so the
// sum would change from run to run; here each chunk of rows is summed in fp64 in row order, then
// the chunks in chunk order — the same bits on every run, and as exact as the CPU's fp64 sums.
#pragma once
#include "cuda_context.cuh"

namespace tk {
namespace cuda {

constexpr int64_t kColumnChunkRows = 64;

template <class Value>
__global__ void column_partials(Value value, int64_t rows, int64_t cols, double* partial) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x, chunk = blockIdx.y;
  if (c >= cols) return;
  const int64_t r0 = chunk * kColumnChunkRows, r1 = r0 + kColumnChunkRows < rows ? r0 + kColumnChunkRows : rows;
  double s = 0.0;
  for (int64_t r = r0; r < r1; ++r) s += value(r, c);
  partial[chunk * cols + c] = s;
}

static __global__ void column_totals(const double* partial, int64_t chunks, int64_t cols, float* dst) {
  const int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (c >= cols) return;
  double s = 0.0;
  for (int64_t k = 0; k < chunks; ++k) s += partial[k * cols + c];
  dst[c] += static_cast<float>(s);
}

template <class Value>
void column_sums(CudaBackend& b, Slot slot, const Value& value, int64_t rows, int64_t cols, float* dst) {
  if (rows <= 0 || cols <= 0) return;
  const int64_t chunks = (rows + kColumnChunkRows - 1) / kColumnChunkRows;
  auto* partial = static_cast<double*>(b.scratch(slot, static_cast<size_t>(chunks * cols) * sizeof(double)));
  const int threads = 128;
  column_partials<<<dim3(grid_for(cols, threads), static_cast<unsigned>(chunks)), threads, 0, b.stream()>>>(value, rows, cols, partial);
  TK_LAUNCHED("column_partials");
  column_totals<<<grid_for(cols, threads), threads, 0, b.stream()>>>(partial, chunks, cols, dst);
  TK_LAUNCHED("column_totals");
}

}  // namespace cuda
}  // namespace tk
