// Collectives between the ranks of a data-parallel run: the one interface the sharded optimizer
// (and later the training loop) calls, whatever carries the bytes.
// Why an interface: the same ZeRO code must run in one process (world size 1, and the threaded
// group tests use to stand in for several ranks), over Open MPI between CPU processes and over
// NCCL between GPUs. Model code never names an engine; a new collective is one method here plus
// one implementation per engine (single process and threads in local_comm.cc; MPI in mpi_comm.cc;
// NCCL in backend/cuda/nccl_comm.cu, which a GPU model's backend hands out: Backend::collectives).
// Every call is collective: all ranks make it, in the same order, with the same counts.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>

namespace tk {

enum class CommType { F32, F64 };

inline int64_t comm_type_size(CommType t) { return t == CommType::F32 ? 4 : 8; }

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  // data[0..count) = the element-wise sum over ranks, on every rank.
  virtual void all_reduce_sum(void* data, int64_t count, CommType type) = 0;
  // in[0..world·count) on every rank; out[0..count) = Σ over ranks of in[rank·count .. +count):
  // each rank receives the sum of its own block.
  virtual void reduce_scatter_sum(const void* in, void* out, int64_t count, CommType type) = 0;
  // in[0..count) on every rank; out[0..world·count) = the ranks' blocks in rank order. `in` may be
  // out + rank·count (gathering a sharded vector in place).
  virtual void all_gather(const void* in, void* out, int64_t count, CommType type) = 0;
  // At root, data[0..count) = the element-wise sum over ranks; elsewhere data is left as it was.
  virtual void reduce_sum(void* data, int64_t count, CommType type, int root) = 0;
  // data[0..count) = root's data on every rank.
  virtual void broadcast(void* data, int64_t count, CommType type, int root) = 0;
  virtual void barrier() = 0;
};

// World size 1: every collective is the identity (or a copy). What a plain run uses.
Comm& single_process_comm();

// `world` ranks inside one process, each driven by its own thread: rank(r) is the Comm that
// thread uses. Collectives block until every rank has arrived (so each thread must make the same
// calls). Tests run the sharded optimizer on it and compare with world size 1.
class LocalGroup {
 public:
  explicit LocalGroup(int world);
  ~LocalGroup();
  Comm& rank(int r);
  int world() const;
  // Runs fn(rank r's Comm) on `world` threads (the caller is rank 0) and waits for all; the first
  // exception is rethrown. A rank that throws before a collective leaves the others waiting, so
  // fn must check its arguments before its first collective.
  void run(const std::function<void(Comm&)>& fn);

 private:
  struct Shared;
  std::unique_ptr<Shared> shared_;
};

}  // namespace tk
