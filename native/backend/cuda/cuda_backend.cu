// The CUDA backend: buffers from the device's stream-ordered memory pool, copies, the placed
// weights, and the op table. Every call first makes the backend's device current on its thread.
#include "cuda_backend.h"

#include <cstring>

#include "cuda_context.cuh"
#include "kernels.cuh"
#ifdef TUNEKIT_WITH_NCCL
#include "nccl_comm.cuh"
#endif

namespace tk {
namespace cuda {

void fail_cuda(cudaError_t e, const char* what) {
  const std::string text = std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
  if (e == cudaErrorMemoryAllocation) fail(ErrorCode::OutOfMemory, "The GPU is out of memory: " + text);
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorInvalidDevice ||
      e == cudaErrorNotSupported || e == cudaErrorNoKernelImageForDevice || e == cudaErrorUnsupportedPtxVersion)
    fail(ErrorCode::Unsupported, text);
  // Anything else (an illegal address, a launch failure) leaves the context unusable: say so.
  fail(ErrorCode::Internal, text + "; the GPU context may be lost (load the model again)");
}

namespace {

std::string gib(double bytes) {
  char s[32];
  std::snprintf(s, sizeof s, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return s;
}

// Why no device is usable, or empty.
std::string device_problem(int device) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  int driver = 0;
  cudaDriverGetVersion(&driver);
  if (driver == 0) return "no NVIDIA driver was found (libcuda.so.1 is not installed, or cannot be opened)";
  if (e == cudaErrorInsufficientDriver)
    return "the NVIDIA driver supports CUDA " + std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10) +
           " but this build needs 13.0 or newer (driver 580+)";
  if (e == cudaErrorNoDevice || (e == cudaSuccess && count == 0)) return "no NVIDIA GPU was found";
  if (e != cudaSuccess) return std::string("the CUDA runtime could not start: ") + cudaGetErrorString(e);
  if (device < 0 || device >= count)
    return "there is no GPU cuda:" + std::to_string(device) + " (this machine has " + std::to_string(count) + ": cuda:0" +
           (count > 1 ? " to cuda:" + std::to_string(count - 1) : std::string()) + ")";
  return "";
}

}  // namespace

CudaBackend::CudaBackend(int device) : device_(device) {
  const std::string problem = device_problem(device);
  if (!problem.empty()) fail(ErrorCode::Unsupported, "The CUDA backend cannot run: " + problem);
  activate();
  TK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  // Freed blocks stay in the pool for the next step (as the CPU's block cache keeps them).
  cudaMemPool_t pool;
  TK_CUDA(cudaDeviceGetDefaultMemPool(&pool, device_));
  uint64_t keep = UINT64_MAX;
  TK_CUDA(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
  blas_ = open_cublas(stream_);
}

CudaBackend::~CudaBackend() {
  cudaSetDevice(device_);
  nccl_.reset();
  cudaStreamSynchronize(stream_);
  for (Scratch& s : scratch_)
    if (s.p) cudaFreeAsync(s.p, stream_);
  for (auto& [host, dev] : placed_) cudaFreeAsync(dev, stream_);
  cudaStreamSynchronize(stream_);
  if (blas_.handle) blas_.destroy(blas_.handle);
  if (stream_) cudaStreamDestroy(stream_);
}

// Not cached per thread: anything may have made another device current since (runtimeInfo walks
// them all), and setting it is a thread-local store in the runtime.
void CudaBackend::activate() const { TK_CUDA(cudaSetDevice(device_)); }

void* CudaBackend::alloc(size_t bytes) {
  activate();
  void* p = nullptr;
  const cudaError_t e = cudaMallocAsync(&p, bytes ? bytes : 1, stream_);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky: clear it
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    fail(ErrorCode::OutOfMemory, "The GPU is out of memory: " + gib(static_cast<double>(bytes)) + " more was needed, " +
                                     gib(static_cast<double>(free)) + " of " + gib(static_cast<double>(total)) +
                                     " is free (try a smaller batchSize or sequence length, or gradient checkpointing)");
  }
  check(e, "cudaMallocAsync");
  return p;
}

void CudaBackend::free(void* p, size_t) noexcept {
  if (!p) return;
  cudaSetDevice(device_);
  cudaFreeAsync(p, stream_);
}

void CudaBackend::fill_zero(void* p, size_t bytes) {
  activate();
  TK_CUDA(cudaMemsetAsync(p, 0, bytes, stream_));
}

// Pageable host memory: the copy has left `src` when the call returns, so the caller may free it.
void CudaBackend::copy_to_device(void* dst, const void* src, size_t bytes) {
  activate();
  TK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
}

void CudaBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
  activate();
  TK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  TK_CUDA(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  activate();
  TK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::synchronize() {
  activate();
  TK_CUDA(cudaStreamSynchronize(stream_));
}

void* CudaBackend::scratch(Slot slot, size_t bytes) {
  Scratch& s = scratch_[slot];
  if (s.bytes >= bytes && s.p) return s.p;
  if (s.p) TK_CUDA(cudaFreeAsync(s.p, stream_));
  s.p = nullptr, s.bytes = 0, s.host.clear();
  const size_t grown = bytes + bytes / 4;
  s.p = alloc(grown);
  s.bytes = grown;
  return s.p;
}

const void* CudaBackend::upload(Slot slot, const void* host, size_t bytes) {
  Scratch& s = scratch_[slot];
  if (s.p && s.host.size() == bytes && std::memcmp(s.host.data(), host, bytes) == 0) return s.p;
  void* p = scratch(slot, bytes);
  copy_to_device(p, host, bytes);
  s.host.assign(static_cast<const unsigned char*>(host), static_cast<const unsigned char*>(host) + bytes);
  return p;
}

void CudaBackend::check_room(size_t bytes, const char* what) {
  activate();
  size_t free = 0, total = 0;
  TK_CUDA(cudaMemGetInfo(&free, &total));
  // What a step needs beyond the weights is the caller's to size; the weights at least must fit
  // with a margin for cuBLAS's workspace and the first activations.
  const size_t margin = size_t{256} << 20;
  if (bytes + margin > free)
    fail(ErrorCode::OutOfMemory, std::string(what) + " take " + gib(static_cast<double>(bytes)) + " but GPU cuda:" +
                                     std::to_string(device_) + " has " + gib(static_cast<double>(free)) + " of " +
                                     gib(static_cast<double>(total)) + " free (quantize the projections with quantize: 'nf4', or use the CPU)");
}

void* CudaBackend::placed_copy(const void* host, size_t bytes) {
  std::lock_guard<std::mutex> lock(placed_mutex_);
  auto it = placed_.find(host);
  if (it != placed_.end()) return it->second;
  void* p = alloc(bytes);  // from the pool, so that its high-water mark counts the weights too
  copy_to_device(p, host, bytes);
  placed_[host] = p;
  return p;
}

// Every format stays as stored: the decode kernels read them all (weight_decode.cuh).
WeightView CudaBackend::place(const WeightView& host) {
  WeightView w = host;
  if (!host.data) return w;
  w.data = placed_copy(host.data, static_cast<size_t>(weight_data_bytes(host)));
  if (host.absmax) w.absmax = static_cast<const float*>(placed_copy(host.absmax, static_cast<size_t>(weight_absmax_count(host)) * 4));
  return w;
}

Comm& CudaBackend::collectives(Comm& host) {
  if (host.world() == 1) return host;  // nothing crosses: the single-process group's no-ops
#ifdef TUNEKIT_WITH_NCCL
  std::lock_guard<std::mutex> lock(nccl_mutex_);
  if (!nccl_) activate(), nccl_ = make_nccl_comm(host, stream_);
  return *nccl_;
#else
  fail(ErrorCode::Unsupported, "Data-parallel training on GPUs needs NCCL, and this CUDA build was made without its headers "
                               "(scripts/setup-cuda.sh installs them; rebuild with TUNEKIT_CUDA=1 npm install)");
#endif
}

const float* CudaBackend::place(const float* host, int64_t n) {
  return host ? static_cast<const float*>(placed_copy(host, static_cast<size_t>(n) * 4)) : nullptr;
}

std::unique_ptr<GemmPanels> prepare_input(const ExecContext&, const float*, int64_t, int64_t) { return nullptr; }

const OpTable kCudaOps = {
    gemm, prepare_input, lora_linear_forward, lora_linear_backward, attention_forward, attention_forward_cached,
    attention_backward, rmsnorm_forward, rmsnorm_backward, layernorm_forward, layernorm_backward, rope_forward,
    rope_backward, swiglu_forward, swiglu_backward, gelu_forward, gelu_backward, geglu_forward, geglu_backward,
    cross_entropy, embedding_forward, embedding_backward, bias_forward, bias_backward, add, scale, softcap, softcap_backward, copy_block, classifier_head_step, classifier_pool, adamw_step,
    sum_squares_chunks,
};

const OpTable& CudaBackend::ops() const { return kCudaOps; }

}  // namespace cuda

std::shared_ptr<Backend> make_cuda_backend(int device) { return std::make_shared<cuda::CudaBackend>(device); }

CudaRuntimeInfo cuda_runtime_info() {
  CudaRuntimeInfo info;
  cudaRuntimeGetVersion(&info.runtime_version);
  cudaDriverGetVersion(&info.driver_version);
  info.error = cuda::device_problem(0);
  if (!info.error.empty()) return info;
  int count = 0;
  cudaGetDeviceCount(&count);
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) continue;
    CudaDeviceInfo dev;
    dev.index = d, dev.name = p.name, dev.memory_bytes = static_cast<int64_t>(p.totalGlobalMem);
    dev.major = p.major, dev.minor = p.minor;
    size_t free = 0, total = 0;
    if (cudaSetDevice(d) == cudaSuccess && cudaMemGetInfo(&free, &total) == cudaSuccess) dev.free_bytes = static_cast<int64_t>(free);
    cudaMemPool_t pool;
    uint64_t used = 0, peak = 0;
    if (cudaDeviceGetDefaultMemPool(&pool, d) == cudaSuccess) {
      cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used);
      cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &peak);
    }
    dev.used_bytes = static_cast<int64_t>(used), dev.peak_bytes = static_cast<int64_t>(peak);
    info.devices.push_back(dev);
  }
  return info;
}

}  // namespace tk
