#include "mpi_comm.h"

#ifndef _WIN32
#include <dlfcn.h>
#endif

#include <mutex>

#include "../core/error.h"
#include "mpi/engine_abi.h"

namespace tk {
namespace {

int engine_type(CommType t) { return t == CommType::F64 ? TK_MPI_F64 : TK_MPI_F32; }

class MpiComm final : public Comm {
 public:
  MpiComm(const tk_mpi_engine* e, int rank, int world) : e_(e), rank_(rank), world_(world) {}
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  void all_reduce_sum(void* data, int64_t count, CommType t) override {
    check(e_->all_reduce_sum(data, count, engine_type(t), err_, sizeof err_));
  }
  void reduce_scatter_sum(const void* in, void* out, int64_t count, CommType t) override {
    check(e_->reduce_scatter_sum(in, out, count, engine_type(t), err_, sizeof err_));
  }
  void all_gather(const void* in, void* out, int64_t count, CommType t) override {
    check(e_->all_gather(in, out, count, engine_type(t), err_, sizeof err_));
  }
  void broadcast(void* data, int64_t count, CommType t, int root) override {
    check_arg(root >= 0 && root < world_, "Expected a broadcast root in [0, " + std::to_string(world_) + ") but received " + std::to_string(root));
    check(e_->broadcast(data, count, engine_type(t), root, err_, sizeof err_));
  }
  void reduce_sum(void* data, int64_t count, CommType t, int root) override {
    check_arg(root >= 0 && root < world_, "Expected a reduce root in [0, " + std::to_string(world_) + ") but received " + std::to_string(root));
    check(e_->reduce_sum(data, count, engine_type(t), root, err_, sizeof err_));
  }
  void barrier() override { check(e_->barrier(err_, sizeof err_)); }

 private:
  // The engine runs one collective at a time, so err_ is written by one call at a time too.
  void check(int failed) {
    if (failed) fail(ErrorCode::Internal, err_);
  }
  const tk_mpi_engine* e_;
  int rank_, world_;
  char err_[1024] = {0};
};

std::mutex opened_mutex;
std::shared_ptr<Comm> opened;
MpiInfo opened_info;

}  // namespace

std::shared_ptr<Comm> open_mpi_comm(const std::string& library, MpiInfo* info) {
  std::lock_guard<std::mutex> lock(opened_mutex);
  if (!opened) {
#ifdef _WIN32
    fail(ErrorCode::Unsupported, "Data-parallel training over MPI is not available on Windows yet (" + library + ")");
#else
    // RTLD_LOCAL: the engine's symbols stay its own (it promotes libmpi to global itself).
    void* h = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* why = dlerror();
      fail(ErrorCode::Unsupported, "Cannot open the MPI engine " + library + ": " + (why ? why : "unknown error") +
                                       " (is Open MPI installed? Debian: apt install openmpi-bin libopenmpi-dev, then rebuild tunekit)");
    }
    using Entry = const tk_mpi_engine* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(h, "tk_mpi_engine_v1"));
    const tk_mpi_engine* e = entry ? entry() : nullptr;
    if (!e || e->abi_version != TK_MPI_ABI_VERSION)
      fail(ErrorCode::Unsupported, library + " is not an MPI engine of this tunekit version (rebuild tunekit)");
    char version[256] = {0}, err[1024] = {0};
    int rank = 0, world = 1;
    if (e->init(&rank, &world, version, sizeof version, err, sizeof err)) fail(ErrorCode::Internal, err);
    opened = std::make_shared<MpiComm>(e, rank, world);
    opened_info = {rank, world, version};
#endif
  }
  if (info) *info = opened_info;
  return opened;
}

}  // namespace tk
