// JS class LlamaModel: a Llama-family decoder over weights the caller loaded (GGUF names:
// token_embd, blk.N.attn_norm / attn_q / attn_k / attn_v / attn_output / ffn_norm / ffn_gate /
// ffn_up / ffn_down, output_norm, output when not tied). logits(tokens) -> Promise<Tensor>.
#include <napi.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../model/llama.h"
#include "../model/llama_lora.h"
#include "../optim/adamw.h"
#include "AddonTensor.h"
#include "PromiseWorker.h"
#include "addon_state.h"
#include "operands.h"
#include "options.h"

namespace tk {
namespace {

struct LlamaState {
  LlamaConfig config;
  LlamaWeights weights;
  std::vector<BOperand> matrices;  // keeps every matrix's memory alive
  std::vector<Tensor> vectors;     // and every norm weight's
  std::vector<std::shared_ptr<const void>> owners;  // what else the views point into
};

// Trainable LoRA adapters of a model, with their gradients and AdamW state (all flat fp32).
// `busy` is held by trainStep/optimizerStep; forward passes refuse to run meanwhile.
struct LoraState {
  LlamaLora lora;
  std::vector<float> m, v;
  int64_t step = 0;
  std::atomic<bool> busy{false};
};

const char* kProjectionNames[kProjections] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
const char* kGgufNames[kProjections] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

const WeightView& projection(const LlamaLayer& L, int p) {
  const WeightView* views[kProjections] = {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
  return *views[p];
}

// Holds `flag` for the lifetime of the guard; throws if someone else holds it.
struct BusyGuard {
  std::atomic<bool>* flag = nullptr;
  explicit BusyGuard(std::atomic<bool>& f, const char* what) {
    bool expected = false;
    check_arg(f.compare_exchange_strong(expected, true), std::string("Expected no other training call running during ") + what);
    flag = &f;
  }
  BusyGuard(BusyGuard&& o) noexcept : flag(o.flag) { o.flag = nullptr; }
  ~BusyGuard() {
    if (flag) *flag = false;
  }
};

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

class AddonLlama : public Napi::ObjectWrap<AddonLlama> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "LlamaModel",
                       {InstanceMethod<&AddonLlama::logits>("logits"),
                        InstanceMethod<&AddonLlama::create_session>("createSession"),
                        InstanceMethod<&AddonLlama::add_lora>("addLora"),
                        InstanceMethod<&AddonLlama::lora_tensors>("loraTensors"),
                        InstanceMethod<&AddonLlama::set_lora_tensors>("setLoraTensors"),
                        InstanceMethod<&AddonLlama::train_step>("trainStep"),
                        InstanceMethod<&AddonLlama::optimizer_step>("optimizerStep"),
                        InstanceMethod<&AddonLlama::enable_full_training>("enableFullTraining"),
                        InstanceMethod<&AddonLlama::full_tensors>("fullTensors")});
  }

  explicit AddonLlama(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonLlama>(info) {
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

 private:
  // logits(tokens: i32 Tensor [n]) -> Promise<Tensor f32 [n, vocab]>
  Napi::Value logits(const Napi::CallbackInfo& info) {
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
  Napi::Value create_session(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("capacity", info.Length() > 0 ? info[0] : info.Env().Undefined());
      const int64_t capacity = option_int(o, "capacity", 2048, 1, int64_t{1} << 20);
      auto session = std::make_shared<SessionState>(state_, lora_, capacity);
      auto* env_state = info.Env().GetInstanceData<AddonState>();
      return env_state->session_ctor.New({Napi::External<std::shared_ptr<SessionState>>::New(info.Env(), &session)});
    });
  }

  // addLora({r, alpha, rslora, targets, layers, seed}): adapters as PEFT initializes them
  // (A uniform in ±1/sqrt(in), B zero), replacing any previous ones.
  Napi::Value add_lora(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      Napi::Object o = options_arg(info, 0);
      const LlamaConfig& c = state_->config;
      const int64_t r = option_int(o, "r", 8, 1, 4096);
      const double alpha = option_number(o, "alpha", 8.0);
      const bool rslora = option_bool(o, "rslora", false);
      uint64_t seed = static_cast<uint64_t>(option_int(o, "seed", 0, 0, int64_t{1} << 53));
      std::array<bool, kProjections> targets{};
      Napi::Value tv = o.Get("targets");
      if (tv.IsUndefined()) {
        targets.fill(true);
      } else {
        check_arg(tv.IsArray(), "Expected an array of module names for targets");
        Napi::Array arr = tv.As<Napi::Array>();
        for (uint32_t i = 0; i < arr.Length(); ++i) {
          std::string name = arr.Get(i).IsString() ? arr.Get(i).As<Napi::String>().Utf8Value() : "";
          int found = -1;
          for (int p = 0; p < kProjections; ++p)
            if (name == kProjectionNames[p]) found = p;
          check_arg(found >= 0, "Expected targets among q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj but received \"" + name + "\"");
          targets[found] = true;
        }
      }
      std::vector<bool> layer_on(c.layers, true);
      Napi::Value lv = o.Get("layers");
      if (!lv.IsUndefined()) {
        check_arg(lv.IsArray(), "Expected an array of layer indices for layers");
        layer_on.assign(c.layers, false);
        Napi::Array arr = lv.As<Napi::Array>();
        for (uint32_t i = 0; i < arr.Length(); ++i) {
          double v = arr.Get(i).IsNumber() ? arr.Get(i).As<Napi::Number>().DoubleValue() : -1;
          check_arg(v >= 0 && v < c.layers && v == static_cast<int64_t>(v),
                    "Expected layer indices in [0, " + std::to_string(c.layers) + ")");
          layer_on[static_cast<size_t>(v)] = true;
        }
      }
      auto ls = std::make_shared<LoraState>();
      LlamaLora& L = ls->lora;
      L.layers.resize(c.layers);
      int64_t offset = 0;
      const float scale = static_cast<float>(rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / r);
      for (int64_t li = 0; li < c.layers; ++li)
        for (int p = 0; p < kProjections; ++p) {
          LoraSlot& slot = L.layers[li][p];
          if (!targets[p] || !layer_on[li]) continue;
          const WeightView& w = projection(state_->weights.layers[li], p);
          slot.on = true, slot.r = r, slot.scale = scale;
          slot.a_offset = offset;
          offset += r * w.cols;
          slot.b_offset = offset;
          offset += w.rows * r;
        }
      L.params.assign(static_cast<size_t>(offset), 0.0f);
      L.grads.assign(static_cast<size_t>(offset), 0.0f);
      ls->m.assign(static_cast<size_t>(offset), 0.0f);
      ls->v.assign(static_cast<size_t>(offset), 0.0f);
      for (int64_t li = 0; li < c.layers; ++li)
        for (int p = 0; p < kProjections; ++p) {
          const LoraSlot& slot = L.layers[li][p];
          if (!slot.on) continue;
          const int64_t in = projection(state_->weights.layers[li], p).cols;
          const float bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(in)));
          for (int64_t i = 0; i < slot.r * in; ++i) {  // splitmix64 -> uniform(-bound, bound)
            uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            z ^= z >> 31;
            L.params[slot.a_offset + i] = (static_cast<float>(z >> 40) / 16777216.0f * 2.0f - 1.0f) * bound;
          }
        }
      lora_ = std::move(ls);
      return Napi::Number::New(info.Env(), static_cast<double>(offset));
    });
  }

  // loraTensors(which = 'params' | 'grads') -> {"blk.N.attn_q.lora_a": Tensor [r, in], ..._b: [out, r]} (copies)
  Napi::Value lora_tensors(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(lora_ != nullptr, "Expected addLora() before loraTensors()");
      const std::string which = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "params";
      check_arg(which == "params" || which == "grads", "Expected 'params' or 'grads'");
      const std::vector<float>& src = which == "params" ? lora_->lora.params : lora_->lora.grads;
      Napi::Object out = Napi::Object::New(info.Env());
      each_slot([&](const std::string& base, const LoraSlot& s, const WeightView& w) {
        Tensor a = Tensor::zeros(Dtype::F32, {s.r, w.cols}), b = Tensor::zeros(Dtype::F32, {w.rows, s.r});
        std::copy(src.begin() + s.a_offset, src.begin() + s.a_offset + s.r * w.cols, a.data<float>());
        std::copy(src.begin() + s.b_offset, src.begin() + s.b_offset + w.rows * s.r, b.data<float>());
        out.Set(base + ".lora_a", AddonTensor::wrap(info.Env(), a));
        out.Set(base + ".lora_b", AddonTensor::wrap(info.Env(), b));
      });
      return out;
    });
  }

  // setLoraTensors({name: Tensor}): copies the given adapters in (names as loraTensors gives them).
  Napi::Value set_lora_tensors(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(lora_ != nullptr, "Expected addLora() before setLoraTensors()");
      check_arg(info.Length() > 0 && info[0].IsObject(), "Expected an object of tensors");
      BusyGuard guard(lora_->busy, "setLoraTensors()");
      Napi::Object in = info[0].As<Napi::Object>();
      Napi::Array keys = in.GetPropertyNames();
      std::vector<std::string> known;
      each_slot([&](const std::string& base, const LoraSlot&, const WeightView&) {
        known.push_back(base + ".lora_a"), known.push_back(base + ".lora_b");
      });
      for (uint32_t i = 0; i < keys.Length(); ++i) {
        const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
        check_arg(std::find(known.begin(), known.end(), key) != known.end(), "Expected a LoRA tensor name but received " + key);
      }
      each_slot([&](const std::string& base, const LoraSlot& s, const WeightView& w) {
        for (int half = 0; half < 2; ++half) {
          const std::string key = base + (half ? ".lora_b" : ".lora_a");
          Napi::Value v = in.Get(key);
          if (v.IsUndefined()) continue;
          const Tensor& t = AddonTensor::unwrap(v, key.c_str())->tensor();
          const int64_t rows = half ? w.rows : s.r, cols = half ? s.r : w.cols;
          check_arg(t.dtype == Dtype::F32 && t.numel() == rows * cols, "Expected " + key + " to be f32 [" +
                                                                            std::to_string(rows) + ", " +
                                                                            std::to_string(cols) + "] but received " +
                                                                            t.shape_string());
          std::copy(t.data<float>(), t.data<float>() + rows * cols, lora_->lora.params.begin() + (half ? s.b_offset : s.a_offset));
        }
      });
      return info.Env().Undefined();
    });
  }

  // trainStep(tokens i32 [batch, n], labels i32 [batch, n], {bf16}) -> Promise<{loss, tokens, gradNorm}>;
  // gradients add up across calls (accumulation) until optimizerStep().
  Napi::Value train_step(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      auto* env_state = info.Env().GetInstanceData<AddonState>();
      check_arg(lora_ != nullptr, "Expected addLora() before trainStep()");
      const Tensor& tokens = AddonTensor::unwrap(info[0], "tokens")->tensor();
      const Tensor& labels = AddonTensor::unwrap(info[1], "labels")->tensor();
      check_arg(tokens.dtype == Dtype::I32 && tokens.rank() == 2 && tokens.numel() > 0,
                "Expected tokens to be an i32 tensor [batch, length]");
      check_arg(labels.dtype == Dtype::I32 && labels.shape == tokens.shape, "Expected labels of the same shape as tokens");
      const int64_t vocab = state_->config.vocab, batch = tokens.shape[0], n = tokens.shape[1];
      const int32_t *ids = tokens.data<int32_t>(), *lab = labels.data<int32_t>();
      for (int64_t i = 0; i < batch * n; ++i) {
        check_arg(ids[i] >= 0 && ids[i] < vocab, "Expected token ids in [0, " + std::to_string(vocab) + ") but element " +
                                                     std::to_string(i) + " holds " + std::to_string(ids[i]));
        check_arg(lab[i] == -100 || (lab[i] >= 0 && lab[i] < vocab),
                  "Expected labels in [0, " + std::to_string(vocab) + ") or -100 but element " + std::to_string(i) +
                      " holds " + std::to_string(lab[i]));
      }
      const Napi::Object step_options = options_arg(info, 2);
      const bool bf16 = option_bool(step_options, "bf16", false);
      const bool checkpoint = option_bool(step_options, "checkpoint", false);
      auto guard = std::make_shared<BusyGuard>(lora_->busy, "trainStep()");
      auto state = state_;
      auto lora = lora_;
      auto pool = env_state->pool;
      const Isa isa = env_state->isa;
      auto result = std::make_shared<std::array<double, 3>>();
      return PromiseWorker::start(
          info.Env(),
          [state, lora, pool, isa, tokens, labels, batch, n, result, guard, bf16, checkpoint] {
            StepResult r = llama_lora_step(state->config, state->weights, lora->lora, tokens.data<int32_t>(),
                                           labels.data<int32_t>(), batch, n, bf16, checkpoint, isa, *pool);
            const auto& g = lora->lora.grads;
            (*result) = {r.loss, static_cast<double>(r.count), std::sqrt(sum_of_squares(g.data(), static_cast<int64_t>(g.size())))};
          },
          [result](Napi::Env env) -> Napi::Value {
            Napi::Object o = Napi::Object::New(env);
            o.Set("loss", (*result)[0]);
            o.Set("tokens", (*result)[1]);
            o.Set("gradNorm", (*result)[2]);
            return o;
          },
          {info[0], info[1], info.This()});
    });
  }

  // optimizerStep({lr, beta1, beta2, eps, weightDecay, maxGradNorm}) -> Promise<{gradNorm, step}>: clips the
  // accumulated gradients by global norm (as torch's clip_grad_norm_), steps AdamW, zeroes them.
  Napi::Value optimizer_step(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(lora_ != nullptr, "Expected addLora() before optimizerStep()");
      Napi::Object o = options_arg(info, 0);
      const AdamWConfig c = adamw_options<AdamWConfig>(o, 1e-4, 0.0);
      const double max_norm = option_number(o, "maxGradNorm", 0.0);
      auto guard = std::make_shared<BusyGuard>(lora_->busy, "optimizerStep()");
      auto lora = lora_;
      auto result = std::make_shared<std::array<double, 2>>();
      // On a worker thread: with full fine-tuning this touches every weight of the model.
      return PromiseWorker::start(
          info.Env(),
          [lora, c, max_norm, result, guard] {
            auto& L = lora->lora;
            const int64_t n = static_cast<int64_t>(L.params.size());
            const double norm = std::sqrt(sum_of_squares(L.grads.data(), n));
            if (max_norm > 0) {
              const double coef = max_norm / (norm + 1e-6);
              if (coef < 1.0)
                for (float& g : L.grads) g = static_cast<float>(g * coef);
            }
            adamw_step(L.params.data(), L.grads.data(), lora->m.data(), lora->v.data(), n, c, ++lora->step);
            std::fill(L.grads.begin(), L.grads.end(), 0.0f);
            *result = {norm, static_cast<double>(lora->step)};
          },
          [result](Napi::Env env) -> Napi::Value {
            Napi::Object out = Napi::Object::New(env);
            out.Set("gradNorm", (*result)[0]);
            out.Set("step", (*result)[1]);
            return out;
          },
          {info.This()});
    });
  }

  // enableFullTraining(): every weight becomes a trainable fp32 slice of one flat buffer (with
  // gradients and AdamW state of the same size); LoRA adapters are dropped. Returns the count.
  Napi::Value enable_full_training(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(!lora_ || !lora_->busy, "Expected no training call running");
      const LlamaConfig& c = state_->config;
      const LlamaWeights& old = state_->weights;
      auto ls = std::make_shared<LoraState>();
      LlamaLora& L = ls->lora;
      FullTraining& F = L.full;
      F.on = true;
      L.layers.resize(c.layers);  // every LoRA slot off
      int64_t total = 0;
      auto take = [&](int64_t size) { const int64_t at = total; total += size; return at; };
      const bool tied = old.lm_head.data == old.embed.data;
      F.embed = take(c.vocab * c.dim);
      F.out_norm = take(c.dim);
      F.lm_head = tied ? -1 : take(c.vocab * c.dim);
      F.layers.resize(c.layers);
      for (int64_t li = 0; li < c.layers; ++li) {
        F.layers[li].attn_norm = take(c.dim);
        F.layers[li].ffn_norm = take(c.dim);
        for (int p = 0; p < kProjections; ++p) {
          const WeightView& w = projection(old.layers[li], p);
          F.layers[li].proj[p] = take(w.rows * w.cols);
        }
      }
      L.params.assign(static_cast<size_t>(total), 0.0f);
      L.grads.assign(static_cast<size_t>(total), 0.0f);
      ls->m.assign(static_cast<size_t>(total), 0.0f);
      ls->v.assign(static_cast<size_t>(total), 0.0f);
      float* P = L.params.data();
      auto dense = [&](const WeightView& w, int64_t at) {  // decode into the buffer, return an f32 view
        for (int64_t r = 0; r < w.rows; ++r) w.decode(r, 0, w.cols, P + at + r * w.cols);
        WeightView v;
        v.format = WeightFormat::F32, v.rows = w.rows, v.cols = w.cols, v.ld = w.cols, v.data = P + at;
        return v;
      };
      auto vec = [&](const float* src, int64_t at) {
        std::copy(src, src + c.dim, P + at);
        return static_cast<const float*>(P + at);
      };
      auto next = std::make_shared<LlamaState>();
      next->config = c;
      next->owners = {state_, ls};  // biases still point into the old state
      LlamaWeights& W = next->weights;
      W.embed = dense(old.embed, F.embed);
      W.out_norm = vec(old.out_norm, F.out_norm);
      W.lm_head = tied ? W.embed : dense(old.lm_head, F.lm_head);
      for (int64_t li = 0; li < c.layers; ++li) {
        LlamaLayer n = old.layers[li];
        n.attn_norm = vec(old.layers[li].attn_norm, F.layers[li].attn_norm);
        n.ffn_norm = vec(old.layers[li].ffn_norm, F.layers[li].ffn_norm);
        WeightView* views[kProjections] = {&n.q, &n.k, &n.v, &n.o, &n.gate, &n.up, &n.down};
        for (int p = 0; p < kProjections; ++p) *views[p] = dense(projection(old.layers[li], p), F.layers[li].proj[p]);
        W.layers.push_back(n);
      }
      state_ = std::move(next);
      lora_ = std::move(ls);
      return Napi::Number::New(info.Env(), static_cast<double>(total));
    });
  }

  // fullTensors(which = 'params' | 'grads') -> {"token_embd.weight": Tensor, "blk.N.attn_q.weight", ...} (copies)
  Napi::Value full_tensors(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(lora_ && lora_->lora.full.on, "Expected enableFullTraining() before fullTensors()");
      const std::string which = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "params";
      check_arg(which == "params" || which == "grads", "Expected 'params' or 'grads'");
      const std::vector<float>& src = which == "params" ? lora_->lora.params : lora_->lora.grads;
      const FullTraining& F = lora_->lora.full;
      const LlamaConfig& c = state_->config;
      Napi::Object out = Napi::Object::New(info.Env());
      auto put = [&](const std::string& name, int64_t at, std::vector<int64_t> shape) {
        Tensor t = Tensor::zeros(Dtype::F32, shape);
        std::copy(src.begin() + at, src.begin() + at + t.numel(), t.data<float>());
        out.Set(name, AddonTensor::wrap(info.Env(), t));
      };
      put("token_embd.weight", F.embed, {c.vocab, c.dim});
      put("output_norm.weight", F.out_norm, {c.dim});
      if (F.lm_head >= 0) put("output.weight", F.lm_head, {c.vocab, c.dim});
      for (int64_t li = 0; li < c.layers; ++li) {
        const std::string p = "blk." + std::to_string(li) + ".";
        put(p + "attn_norm.weight", F.layers[li].attn_norm, {c.dim});
        put(p + "ffn_norm.weight", F.layers[li].ffn_norm, {c.dim});
        for (int k = 0; k < kProjections; ++k) {
          const WeightView& w = projection(state_->weights.layers[li], k);
          put(p + kGgufNames[k] + ".weight", F.layers[li].proj[k], {w.rows, w.cols});
        }
      }
      return out;
    });
  }

  template <class Fn>
  void each_slot(Fn&& fn) const {
    const auto& layers = lora_->lora.layers;
    for (size_t li = 0; li < layers.size(); ++li)
      for (int p = 0; p < kProjections; ++p)
        if (layers[li][p].on)
          fn("blk." + std::to_string(li) + "." + kGgufNames[p], layers[li][p], projection(state_->weights.layers[li], p));
  }

  std::shared_ptr<const LlamaState> state_;
  std::shared_ptr<LoraState> lora_;
};

}  // namespace

Napi::Function define_llama_model(Napi::Env env) {
  env.GetInstanceData<AddonState>()->session_ctor = Napi::Persistent(AddonLlamaSession::define(env));
  return AddonLlama::define(env);
}

}  // namespace tk
