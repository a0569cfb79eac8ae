// cuBLAS, loaded at run time (dlopen) rather than linked: a CUDA build must still load on a
// machine without the CUDA libraries (it runs on the CPU there), and cuBLAS comes from wherever the
// user has it — the system's CUDA, or the nvidia-cublas wheel that PyTorch installs. Only the
// entry points the backend calls are resolved; the types come from cuBLAS's own headers.
#pragma once
#include <cublas_v2.h>

#include <string>

namespace tk {
namespace cuda {

struct Cublas {
  cublasHandle_t handle = nullptr;
  decltype(&cublasGemmEx_64) gemm_ex = nullptr;  // 64-bit sizes: no 2^31 limit on m, n, k or ld
  decltype(&cublasDestroy_v2) destroy = nullptr;
};

// Loads cuBLAS (once per process) and makes a handle on `stream` of the current device. Looks in
// TUNEKIT_CUBLAS (the library's path), the loader's default paths, then each folder of
// TUNEKIT_CUDA_LIBRARY_PATH (colon-separated; lib/ fills it with the pip wheel's folders it finds).
// Throws Unsupported listing where it looked.
Cublas open_cublas(cudaStream_t stream);

}  // namespace cuda
}  // namespace tk
