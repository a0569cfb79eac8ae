// LlamaModel: construction from named weights, logits, and decoding sessions (KV cache).
#include "AddonLlama.h"

#include <algorithm>
#include <cmath>

#include "../model/llama.h"
#include "AddonTensor.h"
#include "PromiseWorker.h"
#include "addon_state.h"

namespace tk {
namespace {

// A decoding session: the KV cache of one sequence. decode(tokens) appends tokens and returns the
// next-token logits; one decode at a time (a second while one runs is an error, not a race).
struct SessionState {
  std::shared_ptr<const LlamaState> model;
  std::shared_ptr<LoraState> lora;  // adapters applied while decoding, if any
  LlamaCache cache;
  std::atomic<bool> busy{false};
  SessionState(std::shared_ptr<const LlamaState> m, std::shared_ptr<LoraState> l, int64_t capacity)
      : model(std::move(m)), lora(std::move(l)), cache(model->config, capacity) {}
};

class AddonLlamaSession : public Napi::ObjectWrap<AddonLlamaSession> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "LlamaSession",
                       {InstanceMethod<&AddonLlamaSession::decode>("decode"),
                        InstanceMethod<&AddonLlamaSession::reset>("reset"),
                        InstanceAccessor<&AddonLlamaSession::length>("length"),
                        InstanceAccessor<&AddonLlamaSession::capacity>("capacity")});
  }
  explicit AddonLlamaSession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonLlamaSession>(info) {
    guarded(info, [&]() -> Napi::Value {
      check_arg(info.Length() == 1 && info[0].IsExternal(), "LlamaSession is made by LlamaModel.createSession()");
      state_ = *info[0].As<Napi::External<std::shared_ptr<SessionState>>>().Data();
      return info.Env().Undefined();
    });
  }

 private:
  Napi::Value decode(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      auto* env_state = info.Env().GetInstanceData<AddonState>();
      const Tensor& tokens = AddonTensor::unwrap(info[0], "tokens")->tensor();
      const LlamaConfig& c = state_->model->config;
      const int64_t n = check_tokens(tokens, c.vocab);
      check_arg(state_->cache.length + n <= state_->cache.capacity,
                "Expected at most " + std::to_string(state_->cache.capacity - state_->cache.length) +
                    " more tokens in this session (capacity " + std::to_string(state_->cache.capacity) + ")");
      bool expected = false;
      check_arg(state_->busy.compare_exchange_strong(expected, true),
                "Expected one decode at a time on a session, but one is still running");
      check_arg(!state_->lora || !state_->lora->busy, "Expected no training call running while decoding");
      auto out = std::make_shared<Tensor>(Tensor::zeros(Dtype::F32, {c.vocab}));
      auto state = state_;
      auto pool = env_state->pool;
      const Isa isa = env_state->isa;
      return PromiseWorker::start(
          info.Env(),
          [state, pool, isa, tokens, out, n] {
            struct Release {
              std::atomic<bool>& flag;
              ~Release() { flag = false; }
            } release{state->busy};
            llama_forward(state->model->config, state->model->weights, tokens.data<int32_t>(), n, &state->cache,
                          out->data<float>(), isa, *pool, state->lora ? &state->lora->lora : nullptr);
          },
          [out](Napi::Env env) -> Napi::Value { return AddonTensor::wrap(env, *out); }, {info[0], info.This()});
    });
  }
  Napi::Value reset(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(!state_->busy, "Expected no decode running while resetting a session");
      state_->cache.length = 0;
      return info.Env().Undefined();
    });
  }
  Napi::Value length(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(state_->cache.length));
  }
  Napi::Value capacity(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(state_->cache.capacity));
  }

  std::shared_ptr<SessionState> state_;
};

}  // namespace

AddonLlama::AddonLlama(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonLlama>(info) {
  guarded(info, [&]() -> Napi::Value {
    Napi::Object cfg = options_arg(info, 0);
    check_arg(info.Length() > 1 && info[1].IsObject(), "Expected an object of tensors as second argument");
    Napi::Object tensors = info[1].As<Napi::Object>();
    auto s = std::make_shared<LlamaState>();
    LlamaConfig& c = s->config;
    constexpr int64_t kMax = int64_t{1} << 31;
    c.dim = option_int(cfg, "dim", 0, 1, kMax);
    c.layers = option_int(cfg, "layers", 0, 1, 4096);
    c.ffn = option_int(cfg, "ffn", 0, 1, kMax);
    c.heads = option_int(cfg, "heads", 0, 1, 4096);
    c.kv_heads = option_int(cfg, "kvHeads", c.heads, 1, c.heads);
    c.head_dim = option_int(cfg, "headDim", c.dim / c.heads, 2, kMax);
    c.vocab = option_int(cfg, "vocab", 0, 1, kMax);
    c.eps = static_cast<float>(option_number(cfg, "eps", 1e-5));
    c.rope_theta = static_cast<float>(option_number(cfg, "ropeTheta", 10000.0));
    c.interleaved_rope = option_bool(cfg, "interleavedRope", true);
    c.sliding_window = option_int(cfg, "slidingWindow", 0, 0, int64_t{1} << 31);
    check_arg(c.heads % c.kv_heads == 0, "Expected heads divisible by kvHeads");
    check_arg(c.head_dim % 2 == 0, "Expected an even headDim");
    const bool tied = option_bool(cfg, "tiedEmbeddings", false);
    const bool qkv_bias = option_bool(cfg, "qkvBias", false);

    auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
      return named_matrix(tensors, name, rows, cols, s->matrices);
    };
    auto vector = [&](const std::string& name, int64_t size) { return named_vector(tensors, name, size, s->vectors); };
    const int64_t qdim = c.heads * c.head_dim, kvdim = c.kv_heads * c.head_dim;
    s->weights.embed = matrix("token_embd.weight", c.vocab, c.dim);
    for (int64_t i = 0; i < c.layers; ++i) {
      const std::string p = "blk." + std::to_string(i) + ".";
      LlamaLayer L;
      L.attn_norm = vector(p + "attn_norm.weight", c.dim);
      L.q = matrix(p + "attn_q.weight", qdim, c.dim);
      L.k = matrix(p + "attn_k.weight", kvdim, c.dim);
      L.v = matrix(p + "attn_v.weight", kvdim, c.dim);
      if (qkv_bias) {
        L.q_bias = vector(p + "attn_q.bias", qdim);
        L.k_bias = vector(p + "attn_k.bias", kvdim);
        L.v_bias = vector(p + "attn_v.bias", kvdim);
      }
      L.o = matrix(p + "attn_output.weight", c.dim, qdim);
      L.ffn_norm = vector(p + "ffn_norm.weight", c.dim);
      L.gate = matrix(p + "ffn_gate.weight", c.ffn, c.dim);
      L.up = matrix(p + "ffn_up.weight", c.ffn, c.dim);
      L.down = matrix(p + "ffn_down.weight", c.dim, c.ffn);
      s->weights.layers.push_back(L);
    }
    s->weights.out_norm = vector("output_norm.weight", c.dim);
    s->weights.lm_head = tied ? s->weights.embed : matrix("output.weight", c.vocab, c.dim);
    state_ = std::move(s);
    return info.Env().Undefined();
  });
}


// logits(tokens: i32 Tensor [n]) -> Promise<Tensor f32 [n, vocab]>
Napi::Value AddonLlama::logits(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* env_state = info.Env().GetInstanceData<AddonState>();
    const Tensor& tokens = AddonTensor::unwrap(info[0], "tokens")->tensor();
    const int64_t n = check_tokens(tokens, state_->config.vocab);
    check_arg(!lora_ || !lora_->busy, "Expected no training call running during logits()");
    auto out = std::make_shared<Tensor>(Tensor::zeros(Dtype::F32, {n, state_->config.vocab}));
    auto state = state_;
    auto lora = lora_;
    auto pool = env_state->pool;
    const Isa isa = env_state->isa;
    return PromiseWorker::start(
        info.Env(),
        [state, lora, pool, isa, tokens, out, n] {
          llama_forward(state->config, state->weights, tokens.data<int32_t>(), n, nullptr, out->data<float>(), isa,
                        *pool, lora ? &lora->lora : nullptr);
        },
        [out](Napi::Env env) -> Napi::Value { return AddonTensor::wrap(env, *out); }, {info[0], info.This()});
  });
}

// createSession(capacity) -> LlamaSession with room for `capacity` tokens.
Napi::Value AddonLlama::create_session(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("capacity", info.Length() > 0 ? info[0] : info.Env().Undefined());
    const int64_t capacity = option_int(o, "capacity", 2048, 1, int64_t{1} << 20);
    auto session = std::make_shared<SessionState>(state_, lora_, capacity);
    auto* env_state = info.Env().GetInstanceData<AddonState>();
    return env_state->session_ctor.New({Napi::External<std::shared_ptr<SessionState>>::New(info.Env(), &session)});
  });
}


Napi::Function define_llama_model(Napi::Env env) {
  env.GetInstanceData<AddonState>()->session_ctor = Napi::Persistent(AddonLlamaSession::define(env));
  return AddonLlama::define(env);
}

}  // namespace tk
