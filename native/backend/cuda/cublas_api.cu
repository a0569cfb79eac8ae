#include "cublas_api.cuh"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <sstream>
#include <vector>

#include "../../core/error.h"

namespace tk {
namespace cuda {
namespace {

// The soname the CUDA 13 toolchain links against (cuBLAS keeps its ABI within a major version).
constexpr const char* kCublas = "libcublas.so.13";
constexpr const char* kCublasLt = "libcublasLt.so.13";

struct Library {
  void* handle = nullptr;
  std::string tried;  // where it looked, for the error
};

// cuBLAS needs cuBLASLt beside it; opening Lt first from the same folder makes that dependency
// resolve even where the folder is not on the loader's path.
void* open_in(const std::string& folder, std::string& tried) {
  const std::string prefix = folder.empty() ? "" : folder + "/";
  tried += (tried.empty() ? "" : ", ") + (folder.empty() ? std::string("the default library path") : folder);
  dlopen((prefix + kCublasLt).c_str(), RTLD_NOW | RTLD_GLOBAL);
  return dlopen((prefix + kCublas).c_str(), RTLD_NOW | RTLD_LOCAL);
}

const Library& library() {
  static Library lib;
  static std::once_flag once;
  std::call_once(once, [] {
    if (const char* path = std::getenv("TUNEKIT_CUBLAS"); path && *path) {
      lib.tried = path;
      lib.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
      if (lib.handle) return;
    }
    lib.handle = open_in("", lib.tried);
    if (lib.handle) return;
    if (const char* dirs = std::getenv("TUNEKIT_CUDA_LIBRARY_PATH")) {
      std::stringstream list(dirs);
      for (std::string dir; std::getline(list, dir, ':');)
        if (!dir.empty() && (lib.handle = open_in(dir, lib.tried)) != nullptr) return;
    }
  });
  return lib;
}

template <class F>
F symbol(void* handle, const char* name) {
  void* p = dlsym(handle, name);
  if (!p) fail(ErrorCode::Unsupported, std::string("cuBLAS has no ") + name + " (expected cuBLAS 13)");
  return reinterpret_cast<F>(p);
}

void check_blas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    fail(s == CUBLAS_STATUS_ALLOC_FAILED ? ErrorCode::OutOfMemory : ErrorCode::Unsupported,
         std::string(what) + " failed with cuBLAS status " + std::to_string(static_cast<int>(s)));
}

}  // namespace

Cublas open_cublas(cudaStream_t stream) {
  const Library& lib = library();
  if (!lib.handle)
    fail(ErrorCode::Unsupported, std::string("The CUDA backend needs cuBLAS 13 (") + kCublas + ") and found none (looked in " + lib.tried +
                                     "). Install it with `pip install nvidia-cublas` (PyTorch's CUDA wheels include it) or the CUDA "
                                     "toolkit, or point TUNEKIT_CUBLAS at the library");
  Cublas b;
  auto create = symbol<decltype(&cublasCreate_v2)>(lib.handle, "cublasCreate_v2");
  auto set_stream = symbol<decltype(&cublasSetStream_v2)>(lib.handle, "cublasSetStream_v2");
  b.gemm_ex = symbol<decltype(&cublasGemmEx_64)>(lib.handle, "cublasGemmEx_64");
  b.destroy = symbol<decltype(&cublasDestroy_v2)>(lib.handle, "cublasDestroy_v2");
  check_blas(create(&b.handle), "cublasCreate");
  check_blas(set_stream(b.handle, stream), "cublasSetStream");
  // The default math mode: fp32 products (CUBLAS_COMPUTE_32F on fp32 operands) stay fp32, never
  // TF32, as the CPU reference is; bf16 is asked for explicitly, per product.
  return b;
}

}  // namespace cuda
}  // namespace tk
