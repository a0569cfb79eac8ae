// Runs native work on a libuv worker thread and settles a Promise with the result.
// Why one generic worker: every slow call has the same shape — check arguments on the JS thread,
// compute off it, build the JS result back on it. The objects passed in `keep_alive` (the tensors
// being read or written) are referenced until the Promise settles so GC cannot reclaim them.
#pragma once
#include <napi.h>

#include <functional>
#include <vector>

#include "errors.h"

namespace tk {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using MakeResult = std::function<Napi::Value(Napi::Env)>;

  // Queues the work and returns its Promise.
  static Napi::Promise start(Napi::Env env, Work work, MakeResult make_result,
                             const std::vector<Napi::Value>& keep_alive = {});

 private:
  PromiseWorker(Napi::Env env, Work work, MakeResult make_result);
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

  Napi::Promise::Deferred deferred_;
  Work work_;
  MakeResult make_result_;
  std::vector<Napi::Reference<Napi::Value>> keep_alive_;
  bool failed_ = false;
  CapturedError error_;
};

}  // namespace tk
