// Per-environment state of the addon (one per Node.js main thread or worker_thread).
// Why not globals: each environment may configure its own threads and ISA, and everything is
// released by the environment's cleanup (better-sqlite3's rule). Workers hold a shared_ptr to the
// pool they were created with, so reconfiguring never pulls a pool from under a running call.
#pragma once
#include <napi.h>

#include <memory>

#include "../backend/cpu/cpu_features.h"
#include "../backend/cpu/thread_pool.h"
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

}  // namespace tk
