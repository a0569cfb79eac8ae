// Measures the machine's sustained fp32 FMA throughput, the "limit" column of the gemm bench.
// Why measure instead of computing cores x clock x width: clocks under load, SMT and VM pinning
// differ per machine; a register-only FMA loop on the same threads is the honest ceiling.
#pragma once
#include "cpu_features.h"
#include "thread_pool.h"

namespace tk {

// GFLOP/s (2 flops per lane per FMA) of `pool.size()` threads running independent FMA chains
// for about `seconds`, with the widest vectors `isa` allows.
double measure_fma_peak_gflops(Isa isa, ThreadPool& pool, double seconds);

// GFLOP/s of vdpbf16ps (4 flops per lane: two products, two adds) on every thread; 0 without
// AVX512_BF16. The ceiling of the bf16 GEMM on CPUs without AMX.
double measure_bf16_peak_gflops(Isa isa, ThreadPool& pool, double seconds);

// GFLOP/s of AMX TDPBF16PS (16 x 16 x 32 multiply-adds per instruction) on every thread; 0 where
// the CPU has no AMX-BF16 (or Linux refused the tile permission). The bf16 GEMM's ceiling there.
double measure_amx_peak_gflops(ThreadPool& pool, double seconds);

// Read bandwidth (GB/s) of every thread streaming its share of a `bytes`-sized buffer (make it
// several times the last-level cache): the ceiling of memory-bound work such as dequantization.
double measure_read_bandwidth_gbs(ThreadPool& pool, size_t bytes, double seconds);

}  // namespace tk
