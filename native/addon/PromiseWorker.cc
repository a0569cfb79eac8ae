#include "PromiseWorker.h"

namespace tk {

PromiseWorker::PromiseWorker(Napi::Env env, Work work, MakeResult make_result)
    : Napi::AsyncWorker(env, "tunekit"),
      deferred_(Napi::Promise::Deferred::New(env)),
      work_(std::move(work)),
      make_result_(std::move(make_result)) {}

Napi::Promise PromiseWorker::start(Napi::Env env, Work work, MakeResult make_result,
                                   const std::vector<Napi::Value>& keep_alive) {
  auto* worker = new PromiseWorker(env, std::move(work), std::move(make_result));
  // Only objects need keeping alive (and only they can be referenced: null/undefined cannot).
  for (const Napi::Value& v : keep_alive)
    if (v.IsObject()) worker->keep_alive_.push_back(Napi::Persistent(v));
  Napi::Promise promise = worker->deferred_.Promise();
  worker->Queue();  // the worker deletes itself after OnOK/OnError
  return promise;
}

void PromiseWorker::Execute() {
  try {
    work_();
  } catch (...) {
    failed_ = true;
    error_ = CapturedError::from_current_exception();
  }
}

void PromiseWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (failed_) {
    deferred_.Reject(make_js_error(env, error_.code.c_str(), error_.message).Value());
    return;
  }
  try {
    deferred_.Resolve(make_result_ ? make_result_(env) : env.Undefined());
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (...) {
    CapturedError e = CapturedError::from_current_exception();
    deferred_.Reject(make_js_error(env, e.code.c_str(), e.message).Value());
  }
}

void PromiseWorker::OnError(const Napi::Error& error) { deferred_.Reject(error.Value()); }

}  // namespace tk
