// The CUDA backend's state, shared by its op files: the device, one stream every op runs on (so
// buffers and scratch are reused in stream order, never raced), cuBLAS, the placed weights and
// the reusable scratch buffers. Why one stream: a step is one long chain of dependent ops; the
// GPU fills itself from inside each op (its kernels and GEMMs), not from running ops side by side.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../../core/error.h"
#include "../backend.h"
#include "cublas_api.cuh"

namespace tk {
namespace cuda {

[[noreturn]] void fail_cuda(cudaError_t e, const char* what);
inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail_cuda(e, what);
}
#define TK_CUDA(call) ::tk::cuda::check((call), #call)
// After a kernel launch: a bad configuration is reported here, a fault at the next synchronization.
#define TK_LAUNCHED(name) ::tk::cuda::check(cudaGetLastError(), name)

inline unsigned grid_for(int64_t n, int threads) {
  const int64_t g = (n + threads - 1) / threads;
  return static_cast<unsigned>(g < 1 ? 1 : (g > (int64_t{1} << 30) ? (int64_t{1} << 30) : g));
}

// Scratch buffers by purpose: each op uses its own slots, in stream order, so a slot is never
// read by an earlier op's kernel after a later op overwrote it.
enum Slot {
  kOperandA, kOperandB, kDecodedB,           // gemm.cu: bf16 operands, a decoded weight
  kLoraScaled, kLoraGrad, kLoraDrop,         // lora_linear.cu: s·T, dT, drop(X)
  kRopeCos, kRopeSin, kRowStart, kRowEnd,    // host data kept while it stays the same (a step's)
  kLabels, kIds, kIdRows,                    // host data of one call
  kStats, kPartials,                         // per-row statistics, per-chunk partial sums
  kSlots
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device);
  ~CudaBackend() override;
  const char* name() const override { return "cuda"; }
  const OpTable& ops() const override;
  void* alloc(size_t bytes) override;
  void free(void* p, size_t bytes) noexcept override;
  void fill_zero(void* p, size_t bytes) override;
  void copy_to_device(void* dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void synchronize() override;
  WeightView place(const WeightView& host) override;
  const float* place(const float* host, int64_t n) override;
  void check_room(size_t bytes, const char* what) override;
  // NCCL over this GPU for a group of more than one rank (set up on first use; nccl_comm.cuh).
  Comm& collectives(Comm& host) override;

  // Makes this backend's device current on the calling thread (ops run on libuv's pool threads).
  void activate() const;
  cudaStream_t stream() const { return stream_; }
  const Cublas& blas() const { return blas_; }
  // A device buffer of at least `bytes` for `slot`, grown (never shrunk) on demand.
  void* scratch(Slot slot, size_t bytes);
  // Host data of one op (labels, ids, segment starts, a RoPE table) on the device, in `slot`: a
  // copy in stream order. Unchanged data (the same table in every layer of a step) is not copied
  // again.
  const void* upload(Slot slot, const void* host, size_t bytes);

 private:
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  Cublas blas_;
  struct Scratch {
    void* p = nullptr;
    size_t bytes = 0;
    std::vector<unsigned char> host;  // what upload() last copied into it
  };
  Scratch scratch_[kSlots];
  std::mutex placed_mutex_, nccl_mutex_;
  std::unique_ptr<Comm> nccl_;
  std::map<const void*, void*> placed_;  // host address -> device copy (freed with the backend)
  void* placed_copy(const void* host, size_t bytes);
};

inline CudaBackend& backend_of(const ExecContext& x) {
  auto& b = *static_cast<CudaBackend*>(x.backend);
  b.activate();
  return b;
}

}  // namespace cuda
}  // namespace tk
