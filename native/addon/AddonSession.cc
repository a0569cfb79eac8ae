#include "AddonSession.h"

#include "AddonTensor.h"
#include "PromiseWorker.h"
#include "addon_state.h"
#include "operands.h"

namespace tk {
namespace {

class AddonModelSession : public Napi::ObjectWrap<AddonModelSession> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "ModelSession",
                       {InstanceMethod<&AddonModelSession::decode>("decode"),
                        InstanceMethod<&AddonModelSession::reset>("reset"),
                        InstanceAccessor<&AddonModelSession::length>("length"),
                        InstanceAccessor<&AddonModelSession::capacity>("capacity")});
  }
  explicit AddonModelSession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonModelSession>(info) {
    guarded(info, [&]() -> Napi::Value {
      check_arg(info.Length() == 1 && info[0].IsExternal(), "ModelSession is made by Model.createSession()");
      state_ = *info[0].As<Napi::External<std::shared_ptr<SessionState>>>().Data();
      return info.Env().Undefined();
    });
  }

 private:
  // decode(tokens i32 [n]) -> Promise<Tensor f32 [vocab]>: appends the tokens, returns the next-token logits.
  Napi::Value decode(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      auto* env_state = info.Env().GetInstanceData<AddonState>();
      const Tensor& tokens = AddonTensor::unwrap(info[0], "tokens")->tensor();
      const ModelFamily& m = *state_->model;
      const int64_t n = check_tokens(tokens, m.vocab());
      const int64_t room = state_->cache->limit() - state_->cache->length();
      check_arg(n <= room, "Expected at most " + std::to_string(room) + " more tokens in this session (capacity " +
                               std::to_string(state_->cache->limit()) + ")");
      bool expected = false;
      check_arg(state_->busy.compare_exchange_strong(expected, true), "Expected one decode at a time on a session, but one is still running");
      // Clears the flag when the last holder (the worker, or this call if it throws) lets go.
      std::shared_ptr<std::atomic<bool>> release(&state_->busy, [](std::atomic<bool>* f) { *f = false; });
      check_arg(!state_->train || !state_->train->busy, "Expected no training call running while decoding");
      auto out = std::make_shared<Tensor>(Tensor::zeros(Dtype::F32, {m.vocab()}));
      auto state = state_;
      auto pool = env_state->pool;
      const Isa isa = env_state->isa;
      return PromiseWorker::start(
          info.Env(),
          [state, release, pool, isa, tokens, out, n] {
            state->model->decode(state->train ? &state->train->t : nullptr, *state->cache, tokens.data<int32_t>(), n,
                                 out->data<float>(), state->model->context(isa, pool.get()));
          },
          [out](Napi::Env env) -> Napi::Value { return AddonTensor::wrap(env, *out); }, {info[0], info.This()});
    });
  }
  Napi::Value reset(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(!state_->busy, "Expected no decode running while resetting a session");
      state_->cache->reset();
      return info.Env().Undefined();
    });
  }
  Napi::Value length(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(state_->cache->length())); }
  // The session's room (what createSession was given); the cache's storage grows to it as needed.
  Napi::Value capacity(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(state_->cache->limit())); }

  std::shared_ptr<SessionState> state_;
};

}  // namespace

Napi::Function define_model_session(Napi::Env env) { return AddonModelSession::define(env); }

}  // namespace tk
