// The CUDA backend (a CUDA build only: TUNEKIT_WITH_CUDA): the op table of backend.h on an NVIDIA
// GPU. Plain C++ here, so that the registry and the addon, which g++ compiles, can name it; the
// class itself is cuda_context.cuh.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../backend.h"

namespace tk {

// A backend on GPU `device`. Throws Unsupported with the reason when there is no usable GPU (no
// driver, a driver older than the CUDA 13.0 runtime, no device of that index) or cuBLAS cannot
// be loaded.
std::shared_ptr<Backend> make_cuda_backend(int device);

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int64_t memory_bytes = 0, free_bytes = 0;
  // tunekit's own allocations (every buffer and placed weight comes from the device's memory
  // pool): now, and the most since the process started.
  int64_t used_bytes = 0, peak_bytes = 0;
  int major = 0, minor = 0;  // compute capability
};

struct CudaRuntimeInfo {
  int runtime_version = 0, driver_version = 0;  // 13000 = 13.0; driver 0: no driver
  std::string error;  // why no device can be used, or empty
  std::vector<CudaDeviceInfo> devices;
};

// What runtimeInfo() reports; never throws.
CudaRuntimeInfo cuda_runtime_info();

// The GPU's element decoder (weight_decode.cuh) run on the host over every element of w (host
// memory), into out [rows, cols]: how a CUDA build checks it without a GPU.
void cuda_decode_on_host(const WeightView& w, float* out);

// NCCL on GPU `device` as a group of one: the number of values its collectives got wrong (0 when
// it initializes and every collective, on device and through host staging, is right). CUDA builds
// with NCCL's header only (TUNEKIT_WITH_NCCL).
int64_t nccl_self_check(int device);

}  // namespace tk
