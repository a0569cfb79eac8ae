// The CPU backend: buffers are host memory from the block cache (backend/cpu/block_cache.h), ops run
// today's kernels (backend/cpu/kernels.h) on the ExecContext's ISA and pool, and the frozen
// weights' bf16 GEMM panels are kept here for the model's lifetime when a step asks for it.
#pragma once
#include "../backend.h"

namespace tk {

std::shared_ptr<Backend> make_cpu_backend();

}  // namespace tk
