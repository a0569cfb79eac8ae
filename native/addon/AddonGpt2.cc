// JS class Gpt2Model: GPT-2 over weights under Hugging Face names (transformer.wte.weight,
// transformer.h.N.attn.c_attn.weight, ...). logits(tokens) -> Promise<Tensor [n, vocab]>.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "../model/gpt2.h"
#include "AddonTensor.h"
#include "PromiseWorker.h"
#include "addon_state.h"
#include "operands.h"
#include "options.h"

namespace tk {
namespace {

struct Gpt2State {
  Gpt2Config config;
  Gpt2Weights weights;
  std::vector<BOperand> matrices;
  std::vector<Tensor> vectors;
};

class AddonGpt2 : public Napi::ObjectWrap<AddonGpt2> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Gpt2Model", {InstanceMethod<&AddonGpt2::logits>("logits")});
  }

  explicit AddonGpt2(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonGpt2>(info) {
    guarded(info, [&]() -> Napi::Value {
      Napi::Object cfg = options_arg(info, 0);
      check_arg(info.Length() > 1 && info[1].IsObject(), "Expected an object of tensors as second argument");
      Napi::Object tensors = info[1].As<Napi::Object>();
      auto s = std::make_shared<Gpt2State>();
      Gpt2Config& c = s->config;
      constexpr int64_t kMax = int64_t{1} << 31;
      c.dim = option_int(cfg, "dim", 0, 1, kMax);
      c.layers = option_int(cfg, "layers", 0, 1, 4096);
      c.heads = option_int(cfg, "heads", 0, 1, 4096);
      c.vocab = option_int(cfg, "vocab", 0, 1, kMax);
      c.positions = option_int(cfg, "positions", 0, 1, kMax);
      c.ffn = option_int(cfg, "ffn", 4 * c.dim, 1, kMax);
      c.eps = static_cast<float>(option_number(cfg, "eps", 1e-5));
      check_arg(c.dim % c.heads == 0, "Expected dim divisible by heads");
      auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
        return named_matrix(tensors, name, rows, cols, s->matrices);
      };
      auto vector = [&](const std::string& name, int64_t size) { return named_vector(tensors, name, size, s->vectors); };
      const int64_t d = c.dim;
      s->weights.wte = matrix("transformer.wte.weight", c.vocab, d);
      s->weights.wpe = vector("transformer.wpe.weight", c.positions * d);
      for (int64_t i = 0; i < c.layers; ++i) {
        const std::string p = "transformer.h." + std::to_string(i) + ".";
        Gpt2Layer L;
        L.ln1_w = vector(p + "ln_1.weight", d), L.ln1_b = vector(p + "ln_1.bias", d);
        L.attn = matrix(p + "attn.c_attn.weight", d, 3 * d), L.attn_b = vector(p + "attn.c_attn.bias", 3 * d);
        L.proj = matrix(p + "attn.c_proj.weight", d, d), L.proj_b = vector(p + "attn.c_proj.bias", d);
        L.ln2_w = vector(p + "ln_2.weight", d), L.ln2_b = vector(p + "ln_2.bias", d);
        L.fc = matrix(p + "mlp.c_fc.weight", d, c.ffn), L.fc_b = vector(p + "mlp.c_fc.bias", c.ffn);
        L.fc_proj = matrix(p + "mlp.c_proj.weight", c.ffn, d), L.fc_proj_b = vector(p + "mlp.c_proj.bias", d);
        s->weights.layers.push_back(L);
      }
      s->weights.lnf_w = vector("transformer.ln_f.weight", d);
      s->weights.lnf_b = vector("transformer.ln_f.bias", d);
      state_ = std::move(s);
      return info.Env().Undefined();
    });
  }

 private:
  Napi::Value logits(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      auto* env_state = info.Env().GetInstanceData<AddonState>();
      const Tensor& tokens = AddonTensor::unwrap(info[0], "tokens")->tensor();
      const int64_t n = check_tokens(tokens, state_->config.vocab);
      check_arg(n <= state_->config.positions, "Expected at most " + std::to_string(state_->config.positions) +
                                                   " tokens (the model's positions) but received " + std::to_string(n));
      auto out = std::make_shared<Tensor>(Tensor::zeros(Dtype::F32, {n, state_->config.vocab}));
      auto state = state_;
      auto pool = env_state->pool;
      const Isa isa = env_state->isa;
      return PromiseWorker::start(
          info.Env(), [state, pool, isa, tokens, out, n] { gpt2_logits(state->config, state->weights, tokens.data<int32_t>(), n, out->data<float>(), isa, *pool); },
          [out](Napi::Env env) -> Napi::Value { return AddonTensor::wrap(env, *out); }, {info[0], info.This()});
    });
  }

  std::shared_ptr<const Gpt2State> state_;
};

}  // namespace

Napi::Function define_gpt2_model(Napi::Env env) { return AddonGpt2::define(env); }

}  // namespace tk
