// Per-environment state of the addon (one per Node.js main thread or worker_thread).
// Why not globals: each environment may configure its own threads and ISA, and everything is
// released by the environment's cleanup (better-sqlite3's rule). Workers hold a shared_ptr to the
// pool they were created with, so reconfiguring never pulls a pool from under a running call.
#pragma once
#include <napi.h>

#include <memory>

#include "../backend/cpu/cpu_features.h"
#include "../backend/cpu/thread_pool.h"
#include "../backend/backend.h"
#include "../dist/comm.h"

namespace tk {

struct AddonState {
  std::shared_ptr<ThreadPool> pool;
  Isa isa = Isa::Scalar;          // ISA the kernels use
  Isa detected_isa = Isa::Scalar;  // best the CPU offers
  bool isa_forced = false;        // chosen through TUNEKIT_ISA or setRuntimeOptions
  Napi::FunctionReference tensor_ctor;   // to wrap tensors made in native code
  Napi::FunctionReference weights_ctor;  // to wrap weights made in native code
  Napi::FunctionReference session_ctor;  // ModelSession, made by Model.createSession
  // The data-parallel group once openDistributed joined one (null: a plain single-process run).
  std::shared_ptr<Comm> comm;
  Comm& group() const { return comm ? *comm : single_process_comm(); }
};

// The group's collectives over a backend's buffers: the MPI engine's for the CPU, the backend's
// own (NCCL) for a GPU; null without a group.
inline std::shared_ptr<Comm> backend_comm(Backend& backend, const std::shared_ptr<Comm>& group) {
  if (!group) return nullptr;
  Comm& c = backend.collectives(*group);
  if (&c == group.get()) return group;
  return std::shared_ptr<Comm>(group, &c);  // owned by the backend; the group (its bootstrap) kept alive with it
}

}  // namespace tk
