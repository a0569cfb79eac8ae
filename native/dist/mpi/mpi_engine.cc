// The MPI engine: Comm's collectives over Open MPI (or any MPI), built as its own shared library
// (libtunekit_mpi) that the addon opens only under a launcher; see engine_abi.h for why.
//
// One communication thread per process. Callers are libuv pool threads (a training step, an
// optimizer step, a JS all-reduce), a different one each time; MPI_THREAD_FUNNELED is what every
// MPI build provides, so every MPI call, MPI_Init_thread and MPI_Finalize included, runs on the
// thread this file starts, and callers hand it one job at a time and wait.
//
// Errors return (MPI_ERRORS_RETURN) as a message instead of MPI's default abort: a failed
// collective must reach JS as an error, never kill the Node process from inside the library.
#include <dlfcn.h>
#include <mpi.h>

#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "engine_abi.h"

namespace {

class Engine {
 public:
  // Runs job on the communication thread and waits for it; returns its MPI error code.
  int run(const std::function<int()>& job) {
    std::lock_guard<std::mutex> caller(callers_);  // one collective at a time, in call order
    std::unique_lock<std::mutex> lock(m_);
    if (quit_) return MPI_ERR_OTHER;  // finalized
    job_ = &job, done_ = false;
    cv_.notify_all();
    cv_.wait(lock, [&] { return done_; });
    return result_;
  }

  void start() {
    thread_ = std::thread([this] { loop(); });
  }

  // Stops the thread after MPI_Finalize; skipped when a collective is still in flight (a peer
  // died mid-call and the process is exiting: waiting would hang the exit).
  void stop() {
    if (!thread_.joinable()) return;
    if (!callers_.try_lock()) {
      thread_.detach();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(m_);
      quit_ = true;
      cv_.notify_all();
    }
    callers_.unlock();
    thread_.join();
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      cv_.wait(lock, [&] { return job_ != nullptr || quit_; });
      if (job_ == nullptr) break;
      const std::function<int()>* job = job_;
      job_ = nullptr;
      lock.unlock();
      int r = MPI_ERR_OTHER;
      try {  // an exception escaping this thread would end the process
        r = (*job)();
      } catch (...) {
      }
      lock.lock();
      result_ = r, done_ = true;
      cv_.notify_all();
    }
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized) MPI_Finalize();
  }

  std::mutex callers_, m_;
  std::condition_variable cv_;
  const std::function<int()>* job_ = nullptr;
  bool done_ = false, quit_ = false;
  int result_ = 0;
  std::thread thread_;
};

Engine* engine = nullptr;  // made by init, never destroyed (a static's destructor at exit could
                           // run while a peer's death keeps the thread inside a collective)
int my_rank = 0, my_world = 1;

void put(char* out, size_t n, const std::string& s) {
  if (n == 0) return;
  std::snprintf(out, n, "%s", s.c_str());
}

// MPI's message for an error code, prefixed with the collective and this rank.
int report(int code, const char* what, char* err, size_t n) {
  if (code == MPI_SUCCESS) return 0;
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(code, text, &len);
  put(err, n, std::string("MPI ") + what + " failed on rank " + std::to_string(my_rank) + ": " + text);
  return 1;
}

bool fits_int(int64_t count, const char* what, char* err, size_t n) {
  if (count >= 0 && count <= INT_MAX) return true;
  put(err, n, std::string("MPI ") + what + ": " + std::to_string(count) + " values in one call is more than MPI's int count allows");
  return false;
}

MPI_Datatype type_of(int t) { return t == TK_MPI_F64 ? MPI_DOUBLE : MPI_FLOAT; }
size_t size_of(int t) { return t == TK_MPI_F64 ? 8 : 4; }

// Open MPI's plugins resolve ompi_* symbols globally; reached only through this library, opened
// RTLD_LOCAL by the addon, libmpi is not global, and some builds then fail in MPI_Init. Reopen
// it RTLD_GLOBAL first (what mpi4py does); a no-op where it already is.
void make_libmpi_global() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&MPI_Init_thread), &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
}

void finalize_at_exit() {
  if (engine) engine->stop();
}

int e_init(int* rank, int* world, char* version, size_t version_len, char* err, size_t err_len) {
  if (engine) {
    *rank = my_rank, *world = my_world;
    return 0;
  }
  make_libmpi_global();
  try {
    engine = new Engine();
    engine->start();
  } catch (const std::exception& e) {  // no thread (or no memory): an error, not an abort
    delete engine;
    engine = nullptr;
    put(err, err_len, std::string("cannot start the MPI communication thread: ") + e.what());
    return 1;
  }
  std::string failure;
  const int code = engine->run([&]() -> int {
    int provided = 0;
    int r = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    if (r != MPI_SUCCESS) return r;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &my_world);
    char lib[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
    int len = 0;
    MPI_Get_library_version(lib, &len);
    std::string v(lib, static_cast<size_t>(len));
    const size_t cut = v.find_first_of(",\n");
    put(version, version_len, cut == std::string::npos ? v : v.substr(0, cut));
    if (provided < MPI_THREAD_FUNNELED) failure = "MPI provides no MPI_THREAD_FUNNELED support";
    return MPI_SUCCESS;
  });
  if (code != MPI_SUCCESS) return report(code, "MPI_Init_thread", err, err_len);
  if (!failure.empty()) {
    put(err, err_len, failure);
    return 1;
  }
  std::atexit(finalize_at_exit);
  *rank = my_rank, *world = my_world;
  return 0;
}

bool ready(char* err, size_t n) {
  if (engine) return true;
  put(err, n, "the MPI engine was used before init");
  return false;
}

int e_all_reduce_sum(void* data, int64_t count, int type, char* err, size_t n) {
  if (!ready(err, n) || !fits_int(count, "all-reduce", err, n)) return 1;
  return report(engine->run([&] {
    return MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), type_of(type), MPI_SUM, MPI_COMM_WORLD);
  }), "all-reduce", err, n);
}

int e_reduce_scatter_sum(const void* in, void* out, int64_t count, int type, char* err, size_t n) {
  if (!ready(err, n) || !fits_int(count, "reduce-scatter", err, n)) return 1;
  const size_t bytes = static_cast<size_t>(count) * size_of(type);
  char* own = static_cast<char*>(const_cast<void*>(in)) + static_cast<size_t>(my_rank) * bytes;
  return report(engine->run([&] {
    if (out != own) return MPI_Reduce_scatter_block(in, out, static_cast<int>(count), type_of(type), MPI_SUM, MPI_COMM_WORLD);
    // In place: MPI puts the result at the start of the buffer; move it to this rank's block.
    const int r = MPI_Reduce_scatter_block(MPI_IN_PLACE, const_cast<void*>(in), static_cast<int>(count), type_of(type), MPI_SUM, MPI_COMM_WORLD);
    if (r == MPI_SUCCESS && my_rank != 0) std::memmove(own, in, bytes);
    return r;
  }), "reduce-scatter", err, n);
}

int e_all_gather(const void* in, void* out, int64_t count, int type, char* err, size_t n) {
  if (!ready(err, n) || !fits_int(count, "all-gather", err, n)) return 1;
  const size_t bytes = static_cast<size_t>(count) * size_of(type);
  const bool in_place = in == static_cast<const char*>(out) + static_cast<size_t>(my_rank) * bytes;
  return report(engine->run([&] {
    return MPI_Allgather(in_place ? MPI_IN_PLACE : in, static_cast<int>(count), type_of(type), out, static_cast<int>(count), type_of(type), MPI_COMM_WORLD);
  }), "all-gather", err, n);
}

int e_broadcast(void* data, int64_t count, int type, int root, char* err, size_t n) {
  if (!ready(err, n) || !fits_int(count, "broadcast", err, n)) return 1;
  return report(engine->run([&] { return MPI_Bcast(data, static_cast<int>(count), type_of(type), root, MPI_COMM_WORLD); }), "broadcast", err, n);
}

int e_reduce_sum(void* data, int64_t count, int type, int root, char* err, size_t n) {
  if (!ready(err, n) || !fits_int(count, "reduce", err, n)) return 1;
  return report(engine->run([&] {
    const int c = static_cast<int>(count);
    return my_rank == root ? MPI_Reduce(MPI_IN_PLACE, data, c, type_of(type), MPI_SUM, root, MPI_COMM_WORLD)
                           : MPI_Reduce(data, nullptr, c, type_of(type), MPI_SUM, root, MPI_COMM_WORLD);
  }), "reduce", err, n);
}

int e_barrier(char* err, size_t n) {
  if (!ready(err, n)) return 1;
  return report(engine->run([&] { return MPI_Barrier(MPI_COMM_WORLD); }), "barrier", err, n);
}

void e_finalize() { finalize_at_exit(); }

const tk_mpi_engine table = {
    TK_MPI_ABI_VERSION, e_init, e_all_reduce_sum, e_reduce_scatter_sum, e_all_gather, e_broadcast, e_reduce_sum, e_barrier, e_finalize,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const tk_mpi_engine* tk_mpi_engine_v1(void) { return &table; }
