// The op table's ops for runOp beyond its original list (AddonOps.cc): layernorm, the embedding,
// bias, add, copy_block, the norm's sums of squares, gemm, the LoRA linear and weight decoding,
// so that the backend-ops test can run every entry of the table on every backend.
#pragma once
#include <napi.h>

#include <functional>
#include <string>
#include <vector>

#include "../backend/backend.h"
#include "../core/tensor.h"

namespace tk {

struct OpMarshal {
  const std::string& name;
  const std::vector<Tensor>& t;
  const Napi::Object& o;
  const ExecContext& x;
  std::function<float*(size_t, int64_t)> f32;    // tensors[i] in the backend's memory, checked f32 of n elements
  std::function<int32_t*(size_t, int64_t)> i32;  // tensors[i] as host data, checked i32 of n elements
  std::function<void*(size_t)> device;           // tensors[i] in the backend's memory, any dtype
  std::function<void(size_t)> need;              // checks the tensor count
};

// Sets `work` (run on a worker thread; it may write `result`) for the op named; false when the
// name is not one of these.
bool table_op(const OpMarshal& m, std::function<void()>& work, std::vector<double>& result);

}  // namespace tk
