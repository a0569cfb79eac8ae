// NCCL between the GPUs of a data-parallel run (issue 16): the Comm interface (dist/comm.h) over
// device buffers, so the sharded optimizer and the backward's gradient reductions run unchanged on
// GPU ranks. NCCL is opened with dlopen (libnccl.so.2: the system's, or the nvidia-nccl wheel
// PyTorch installs), like cuBLAS, so a CUDA build loads without it; its communicator is set up
// over the host group (the MPI engine): rank 0's unique id broadcast to every rank.
#pragma once
#include <cuda_runtime.h>

#include <memory>

#include "../../dist/comm.h"

namespace tk {
namespace cuda {

// A communicator of host.world() ranks, this one on the current device, running its collectives
// on `stream` (the backend's, so they are ordered after the kernels that made their data).
// Throws Unsupported when NCCL cannot be loaded, naming where it looked.
std::unique_ptr<Comm> make_nccl_comm(Comm& host, cudaStream_t stream);

}  // namespace cuda
}  // namespace tk
