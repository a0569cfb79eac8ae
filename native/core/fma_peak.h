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

}  // namespace tk
