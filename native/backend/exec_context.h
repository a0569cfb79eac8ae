// What every op takes in place of a kernel variant and a thread pool: the backend running it and
// the resources of this call. Its own header so that op interfaces (ops/) can name it while the
// op table (backend/backend.h) names their argument structs.
#pragma once
#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"

namespace tk {

class Backend;
struct OpTable;

// Built per call (Backend::context): the addon may choose another ISA or pool between calls,
// never during one.
struct ExecContext {
  Backend* backend = nullptr;
  const OpTable* op = nullptr;  // backend->ops()
  // CPU backend: the kernel variant (backend/cpu/cpu_features.h) and the threads of this call; a
  // device backend ignores them.
  Isa isa = Isa::Scalar;
  ThreadPool* pool = nullptr;
  // The step's frozen weights may keep a prepared copy on the backend (the CPU backend: their
  // bf16 GEMM panels, 2 bytes per weight and orientation) instead of preparing them in every
  // product. Off in full fine-tuning, where the weights change every step.
  bool keep_weights = false;
};

}  // namespace tk
