#include "nccl_comm.cuh"

#include <dlfcn.h>
#include <nccl.h>

#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "../../core/error.h"
#include "cuda_backend.h"
#include "cuda_context.cuh"

namespace tk {
namespace cuda {
namespace {

struct Nccl {
  void* handle = nullptr;
  std::string tried;
  decltype(&ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&ncclCommInitRank) init_rank = nullptr;
  decltype(&ncclCommDestroy) destroy = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclReduceScatter) reduce_scatter = nullptr;
  decltype(&ncclAllGather) all_gather = nullptr;
  decltype(&ncclReduce) reduce = nullptr;
  decltype(&ncclBroadcast) broadcast = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
};

template <class F>
void resolve(void* h, const char* name, F& out) {
  out = reinterpret_cast<F>(dlsym(h, name));
  if (!out) fail(ErrorCode::Unsupported, std::string("NCCL has no ") + name);
}

// TUNEKIT_NCCL (the library's path), the loader's path, then TUNEKIT_CUDA_LIBRARY_PATH's folders.
const Nccl& nccl() {
  static Nccl n;
  static std::once_flag once;
  std::call_once(once, [] {
    auto open = [](const std::string& path) {
      n.tried += (n.tried.empty() ? "" : ", ") + path;
      return dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    };
    if (const char* path = std::getenv("TUNEKIT_NCCL"); path && *path) n.handle = open(path);
    if (!n.handle) n.handle = open("libnccl.so.2");
    if (const char* dirs = std::getenv("TUNEKIT_CUDA_LIBRARY_PATH"); !n.handle && dirs) {
      std::stringstream list(dirs);
      for (std::string dir; !n.handle && std::getline(list, dir, ':');)
        if (!dir.empty()) n.handle = open(dir + "/libnccl.so.2");
    }
    if (!n.handle) return;
    resolve(n.handle, "ncclGetUniqueId", n.get_unique_id);
    resolve(n.handle, "ncclCommInitRank", n.init_rank);
    resolve(n.handle, "ncclCommDestroy", n.destroy);
    resolve(n.handle, "ncclAllReduce", n.all_reduce);
    resolve(n.handle, "ncclReduceScatter", n.reduce_scatter);
    resolve(n.handle, "ncclAllGather", n.all_gather);
    resolve(n.handle, "ncclReduce", n.reduce);
    resolve(n.handle, "ncclBroadcast", n.broadcast);
    resolve(n.handle, "ncclGetErrorString", n.error_string);
  });
  if (!n.handle)
    fail(ErrorCode::Unsupported, "Data-parallel training on GPUs needs NCCL 2 (libnccl.so.2) and found none (looked in " + n.tried +
                                     "). Install it with `pip install nvidia-nccl-cu13` (PyTorch's CUDA wheels include it), or point TUNEKIT_NCCL at the library");
  return n;
}

ncclDataType_t nccl_type(CommType t) { return t == CommType::F32 ? ncclFloat32 : ncclFloat64; }

class NcclComm final : public Comm {
 public:
  NcclComm(Comm& host, cudaStream_t stream) : api_(nccl()), host_(host), stream_(stream) {
    // ncclUniqueId is 128 opaque bytes: rank 0 makes it, the host group carries it as 16 doubles.
    static_assert(sizeof(ncclUniqueId) % sizeof(double) == 0, "ncclUniqueId must travel as whole doubles");
    ncclUniqueId id{};
    if (host.rank() == 0) check(api_.get_unique_id(&id), "ncclGetUniqueId");
    host.broadcast(&id, sizeof(id) / sizeof(double), CommType::F64, 0);
    check(api_.init_rank(&comm_, host.world(), id, host.rank()), "ncclCommInitRank");
  }
  ~NcclComm() override {
    if (comm_) api_.destroy(comm_);
    if (staging_) cudaFree(staging_);
  }
  int rank() const override { return host_.rank(); }
  int world() const override { return host_.world(); }

  void all_reduce_sum(void* data, int64_t count, CommType t) override {
    staged(data, static_cast<size_t>(count * comm_type_size(t)), [&](void* d) {
      check(api_.all_reduce(d, d, static_cast<size_t>(count), nccl_type(t), ncclSum, comm_, stream_), "ncclAllReduce");
    });
  }
  // In place when out = in + rank·count, as the optimizer calls it (NCCL's in-place form).
  void reduce_scatter_sum(const void* in, void* out, int64_t count, CommType t) override {
    require_device(in, "reduce_scatter"), require_device(out, "reduce_scatter");
    check(api_.reduce_scatter(in, out, static_cast<size_t>(count), nccl_type(t), ncclSum, comm_, stream_), "ncclReduceScatter");
    finish();
  }
  // The optimizer gathers its parameters (device, in place) and its norm partials (host) this way.
  void all_gather(const void* in, void* out, int64_t count, CommType t) override {
    const size_t block = static_cast<size_t>(count * comm_type_size(t));
    if (on_device(out)) {
      require_device(in, "all_gather");
      check(api_.all_gather(in, out, static_cast<size_t>(count), nccl_type(t), comm_, stream_), "ncclAllGather");
      return finish();
    }
    char* dev = static_cast<char*>(staging(block * static_cast<size_t>(world())));
    TK_CUDA(cudaMemcpyAsync(dev + block * rank(), in, block, cudaMemcpyHostToDevice, stream_));
    check(api_.all_gather(dev + block * rank(), dev, static_cast<size_t>(count), nccl_type(t), comm_, stream_), "ncclAllGather");
    TK_CUDA(cudaMemcpyAsync(out, dev, block * static_cast<size_t>(world()), cudaMemcpyDeviceToHost, stream_));
    finish();
  }
  void reduce_sum(void* data, int64_t count, CommType t, int root) override {
    staged(data, static_cast<size_t>(count * comm_type_size(t)), [&](void* d) {
      check(api_.reduce(d, d, static_cast<size_t>(count), nccl_type(t), ncclSum, root, comm_, stream_), "ncclReduce");
    });
  }
  void broadcast(void* data, int64_t count, CommType t, int root) override {
    staged(data, static_cast<size_t>(count * comm_type_size(t)), [&](void* d) {
      check(api_.broadcast(d, d, static_cast<size_t>(count), nccl_type(t), root, comm_, stream_), "ncclBroadcast");
    });
  }
  void barrier() override { host_.barrier(); }

 private:
  // A device buffer is used in place; a host one (the token count, the loss sums) goes through
  // device staging memory. The collective has completed when the call returns.
  template <class F>
  void staged(void* data, size_t bytes, F&& run) {
    if (on_device(data)) {
      run(data);
      return finish();
    }
    void* dev = staging(bytes);
    TK_CUDA(cudaMemcpyAsync(dev, data, bytes, cudaMemcpyHostToDevice, stream_));
    run(dev);
    TK_CUDA(cudaMemcpyAsync(data, dev, bytes, cudaMemcpyDeviceToHost, stream_));
    finish();
  }

  bool on_device(const void* p) const {
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
  }
  void require_device(const void* p, const char* what) const {
    check_arg(on_device(p), std::string("NCCL ") + what + ": expected a buffer in GPU memory");
  }
  void* staging(size_t bytes) {
    if (bytes > staging_bytes_) {
      if (staging_) cudaFree(staging_);
      staging_ = nullptr, staging_bytes_ = 0;
      TK_CUDA(cudaMalloc(&staging_, bytes));
      staging_bytes_ = bytes;
    }
    return staging_;
  }
  void finish() { TK_CUDA(cudaStreamSynchronize(stream_)); }
  void check(ncclResult_t r, const char* what) const {
    if (r != ncclSuccess)
      fail(r == ncclSystemError || r == ncclRemoteError ? ErrorCode::Internal : ErrorCode::Unsupported,
           std::string(what) + " failed: " + api_.error_string(r) + " (rank " + std::to_string(host_.rank()) + " of " +
               std::to_string(host_.world()) + "; each rank needs a GPU of its own)");
  }

  const Nccl& api_;
  Comm& host_;
  cudaStream_t stream_;
  ncclComm_t comm_ = nullptr;
  void* staging_ = nullptr;
  size_t staging_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Comm> make_nccl_comm(Comm& host, cudaStream_t stream) { return std::make_unique<NcclComm>(host, stream); }

}  // namespace cuda

// One GPU, one rank (NCCL refuses two ranks on one GPU): every collective on device buffers and
// through host staging must give the single-process result (the values themselves at world 1).
int64_t nccl_self_check(int device) {
  auto backend = make_cuda_backend(device);
  auto& b = static_cast<cuda::CudaBackend&>(*backend);
  b.activate();
  auto comm = cuda::make_nccl_comm(single_process_comm(), b.stream());
  const int64_t n = 1000;
  std::vector<float> host(n), back(n);
  for (int64_t i = 0; i < n; ++i) host[i] = static_cast<float>(i) * 0.25f - 7.0f;
  float* dev = static_cast<float*>(b.alloc(n * 4));
  int64_t wrong = 0;
  auto compare = [&] {
    b.copy_to_host(back.data(), dev, n * 4);
    for (int64_t i = 0; i < n; ++i) wrong += back[i] != host[i];
  };
  b.copy_to_device(dev, host.data(), n * 4);
  comm->all_reduce_sum(dev, n, CommType::F32), compare();
  comm->reduce_scatter_sum(dev, dev, n, CommType::F32), compare();
  comm->all_gather(dev, dev, n, CommType::F32), compare();
  comm->broadcast(dev, n, CommType::F32, 0), compare();
  comm->reduce_sum(dev, n, CommType::F32, 0), compare();
  double tokens[2] = {3.0, 5.5};  // host memory: staged through the device
  comm->all_reduce_sum(tokens, 2, CommType::F64);
  wrong += tokens[0] != 3.0 || tokens[1] != 5.5;
  std::vector<double> parts{1.5, 2.5}, gathered(2);
  comm->all_gather(parts.data(), gathered.data(), 2, CommType::F64);
  wrong += gathered != parts;
  b.free(dev, n * 4);
  return wrong;
}
}  // namespace tk
