// JS class Gpt2Model: GPT-2 over weights under Hugging Face names (transformer.wte.weight,
// transformer.h.N.attn.c_attn.weight, ...). logits(tokens) -> Promise<Tensor [n, vocab]>; LoRA
// on c_attn / c_proj (attention and MLP) / c_fc: addLora, loraTensors, setLoraTensors,
// trainStep, optimizerStep (AdamW), optimizerState / setOptimizerState.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include <algorithm>
#include <atomic>
#include <cmath>

#include "../model/gpt2.h"
#include "../model/gpt2_train.h"
#include "lora_options.h"
#include "../optim/adamw.h"
#include "AddonTensor.h"
#include "trainable_state.h"
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
  std::vector<std::shared_ptr<const void>> owners;  // what else the views point into
};

// Adapters, gradients and AdamW state, flat fp32; `busy` while a step runs.
struct Gpt2TrainState {
  Gpt2Lora lora;
  std::vector<float> m, v;
  int64_t step = 0;
  std::atomic<bool> busy{false};
};

const char* kGpt2Names[kGpt2Projections] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};

const WeightView& gpt2_projection(const Gpt2Layer& L, int p) {
  const WeightView* v[kGpt2Projections] = {&L.attn, &L.proj, &L.fc, &L.fc_proj};
  return *v[p];
}

struct Busy {
  std::shared_ptr<Gpt2TrainState> s;
  explicit Busy(std::shared_ptr<Gpt2TrainState> st, const char* what) : s(std::move(st)) {
    bool expected = false;
    check_arg(s->busy.compare_exchange_strong(expected, true), std::string("Expected no other training call running during ") + what);
  }
  ~Busy() { s->busy = false; }
};

class AddonGpt2 : public Napi::ObjectWrap<AddonGpt2> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Gpt2Model",
                       {InstanceMethod<&AddonGpt2::logits>("logits"), InstanceMethod<&AddonGpt2::add_lora>("addLora"),
                        InstanceMethod<&AddonGpt2::lora_tensors>("loraTensors"),
                        InstanceMethod<&AddonGpt2::set_lora_tensors>("setLoraTensors"),
                        InstanceMethod<&AddonGpt2::train_step>("trainStep"),
                        InstanceMethod<&AddonGpt2::optimizer_step>("optimizerStep"),
                        InstanceMethod<&AddonGpt2::optimizer_state>("optimizerState"),
                        InstanceMethod<&AddonGpt2::set_optimizer_state>("setOptimizerState"),
                        InstanceMethod<&AddonGpt2::decode>("decode"),
                        InstanceMethod<&AddonGpt2::enable_full_training>("enableFullTraining"),
                        InstanceMethod<&AddonGpt2::full_tensors>("fullTensors")});
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
  // addLora({r, alpha, rslora, targets: ['c_attn', 'c_proj', 'c_fc'], layers, seed}): PEFT's init
  // (A uniform in ±1/sqrt(in), B zero); c_proj covers both attention and MLP, as in PEFT.
  Napi::Value add_lora(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      Napi::Object o = options_arg(info, 0);
      const Gpt2Config& c = state_->config;
      const LoraSpec spec = lora_spec_option(o);
      check_arg(spec.dropout == 0.0f, "Expected dropout 0: LoRA dropout is not supported for GPT-2 yet");
      std::array<bool, kGpt2Projections> on{};
      const Napi::Value tv = o.Get("targets");
      if (tv.IsUndefined()) {
        on.fill(true);
      } else {
        check_arg(tv.IsArray(), "Expected an array of module names for targets");
        Napi::Array a = tv.As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); ++i) {
          const std::string name = a.Get(i).ToString().Utf8Value();
          check_arg(name == "c_attn" || name == "c_proj" || name == "c_fc", "Expected targets among c_attn, c_proj, c_fc but received \"" + name + "\"");
          if (name == "c_attn") on[kGpt2Attn] = true;
          if (name == "c_proj") on[kGpt2Proj] = on[kGpt2FcProj] = true;
          if (name == "c_fc") on[kGpt2Fc] = true;
        }
      }
      const std::vector<bool> layer_on = layer_mask_option(o, c.layers);
      check_arg(!train_ || !train_->busy, "Expected no training call running");
      auto ts = std::make_shared<Gpt2TrainState>();
      Gpt2Lora& L = ts->lora;
      const int64_t offset = layout_lora(L.layers, c.layers, spec, [&](int64_t li, int p) {
        if (!on[p] || !layer_on[li]) return std::pair<int64_t, int64_t>{0, 0};
        const WeightView& w = gpt2_projection(state_->weights.layers[li], p);  // Conv1D [in, out]
        return std::pair<int64_t, int64_t>{w.rows, w.cols};
      }, L.params);
      L.grads.assign(static_cast<size_t>(offset), 0.0f);
      ts->m.assign(static_cast<size_t>(offset), 0.0f);
      ts->v.assign(static_cast<size_t>(offset), 0.0f);
      train_ = std::move(ts);
      return Napi::Number::New(info.Env(), static_cast<double>(offset));
    });
  }

  template <class Fn>
  void each_slot(Fn&& fn) const {
    for (size_t li = 0; li < train_->lora.layers.size(); ++li)
      for (int p = 0; p < kGpt2Projections; ++p)
        if (train_->lora.layers[li][p].on)
          fn("transformer.h." + std::to_string(li) + "." + kGpt2Names[p], train_->lora.layers[li][p],
             gpt2_projection(state_->weights.layers[li], p));
  }

  // loraTensors(which) -> {"transformer.h.N.attn.c_attn.lora_a": [r, in], "..lora_b": [out, r]} (copies)
  Napi::Value lora_tensors(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(train_ != nullptr, "Expected addLora() before loraTensors()");
      const bool grads = info.Length() > 0 && info[0].IsString() && info[0].As<Napi::String>().Utf8Value() == "grads";
      const std::vector<float>& src = grads ? train_->lora.grads : train_->lora.params;
      Napi::Object out = Napi::Object::New(info.Env());
      each_slot([&](const std::string& base, const LoraSlot& s, const WeightView& w) {
        Tensor a = Tensor::zeros(Dtype::F32, {s.r, w.rows}), b = Tensor::zeros(Dtype::F32, {w.cols, s.r});
        std::copy(src.begin() + s.a_offset, src.begin() + s.a_offset + a.numel(), a.data<float>());
        std::copy(src.begin() + s.b_offset, src.begin() + s.b_offset + b.numel(), b.data<float>());
        out.Set(base + ".lora_a", AddonTensor::wrap(info.Env(), a));
        out.Set(base + ".lora_b", AddonTensor::wrap(info.Env(), b));
      });
      return out;
    });
  }

  Napi::Value set_lora_tensors(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(train_ != nullptr, "Expected addLora() before setLoraTensors()");
      Napi::Object in = options_arg(info, 0);
      Busy busy(train_, "setLoraTensors()");
      each_slot([&](const std::string& base, const LoraSlot& s, const WeightView& w) {
        for (int half = 0; half < 2; ++half) {
          const std::string key = base + (half ? ".lora_b" : ".lora_a");
          if (in.Get(key).IsUndefined()) continue;
          const Tensor& t = AddonTensor::unwrap(in.Get(key), key.c_str())->tensor();
          const int64_t count = half ? w.cols * s.r : s.r * w.rows;
          check_arg(t.dtype == Dtype::F32 && t.numel() == count, "Expected " + key + " to be f32 with " + std::to_string(count) + " elements");
          std::copy(t.data<float>(), t.data<float>() + count, train_->lora.params.begin() + (half ? s.b_offset : s.a_offset));
        }
      });
      return info.Env().Undefined();
    });
  }

  // trainStep(tokens [batch, n], labels [batch, n], {backward, gradScale, positions}) -> {loss, tokens, gradNorm}
  Napi::Value train_step(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      auto* env_state = info.Env().GetInstanceData<AddonState>();
      const Gpt2Config& c = state_->config;
      const Tensor& tokens = AddonTensor::unwrap(info[0], "tokens")->tensor();
      const Tensor& labels = AddonTensor::unwrap(info[1], "labels")->tensor();
      check_arg(tokens.dtype == Dtype::I32 && tokens.rank() == 2 && tokens.numel() > 0, "Expected tokens to be an i32 tensor [batch, length]");
      check_arg(labels.dtype == Dtype::I32 && labels.shape == tokens.shape, "Expected labels of the same shape as tokens");
      const int64_t batch = tokens.shape[0], n = tokens.shape[1];
      check_arg(n <= c.positions, "Expected at most " + std::to_string(c.positions) + " tokens per row (the model's positions)");
      for (int64_t i = 0; i < batch * n; ++i) {
        const int32_t id = tokens.data<int32_t>()[i], l = labels.data<int32_t>()[i];
        check_arg(id >= 0 && id < c.vocab, "Expected token ids in [0, " + std::to_string(c.vocab) + ") but element " + std::to_string(i) + " holds " + std::to_string(id));
        check_arg(l == -100 || (l >= 0 && l < c.vocab), "Expected labels in [0, " + std::to_string(c.vocab) + ") or -100 but element " + std::to_string(i) + " holds " + std::to_string(l));
      }
      Napi::Object o = options_arg(info, 2);
      StepOptions so;
      so.backward = option_bool(o, "backward", true);
      so.grad_scale = static_cast<float>(option_number(o, "gradScale", 1.0));
      std::shared_ptr<Tensor> positions;
      if (!o.Get("positions").IsUndefined()) {
        positions = std::make_shared<Tensor>(AddonTensor::unwrap(o.Get("positions"), "positions")->tensor());
        check_arg(positions->dtype == Dtype::I32 && positions->shape == tokens.shape, "Expected positions shaped like tokens");
        for (int64_t i = 0; i < batch * n; ++i) {
          const int32_t p = positions->data<int32_t>()[i];
          check_arg(p == 0 || (i % n != 0 && p == positions->data<int32_t>()[i - 1] + 1),
                    "Expected positions that start each row at 0 and count up by one but element " + std::to_string(i) + " holds " + std::to_string(p));
        }
        so.positions = positions->data<int32_t>();
      }
      check_arg(train_ != nullptr || !so.backward, "Expected addLora() before trainStep()");
      auto train = train_;
      if (!train) {
        train = std::make_shared<Gpt2TrainState>();
        train->lora.layers.resize(static_cast<size_t>(c.layers));
      }
      auto busy = std::make_shared<Busy>(train, "trainStep()");
      auto state = state_;
      auto pool = env_state->pool;
      const Isa isa = env_state->isa;
      auto result = std::make_shared<std::array<double, 3>>();
      return PromiseWorker::start(
          info.Env(),
          [state, train, busy, pool, isa, tokens, labels, positions, batch, n, so, result] {
            const StepResult r = gpt2_lora_step(state->config, state->weights, train->lora, tokens.data<int32_t>(), labels.data<int32_t>(), batch, n, so, isa, *pool);
            const auto& g = train->lora.grads;
            *result = {r.loss, static_cast<double>(r.count), so.backward ? std::sqrt(sum_of_squares(g.data(), static_cast<int64_t>(g.size()))) : 0.0};
          },
          [result](Napi::Env env) -> Napi::Value {
            Napi::Object out = Napi::Object::New(env);
            out.Set("loss", (*result)[0]), out.Set("tokens", (*result)[1]), out.Set("gradNorm", (*result)[2]);
            return out;
          },
          {info[0], info[1], info.This()});
    });
  }

  // optimizerStep({lr, beta1, beta2, eps, weightDecay, maxGradNorm}) -> {gradNorm, step}: as the Llama model's.
  Napi::Value optimizer_step(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(train_ != nullptr, "Expected addLora() before optimizerStep()");
      Napi::Object o = options_arg(info, 0);
      const AdamWConfig cfg = adamw_options<AdamWConfig>(o, 1e-4, 0.0);
      const double max_norm = option_number(o, "maxGradNorm", 0.0);
      Busy busy(train_, "optimizerStep()");
      const double norm = flat_optimizer_step(flat(), cfg, max_norm, {});
      Napi::Object out = Napi::Object::New(info.Env());
      out.Set("gradNorm", norm), out.Set("step", static_cast<double>(train_->step));
      return out;  // adapters are small: stepped here, returned through a resolved Promise by the JS side
    });
  }

  Napi::Value optimizer_state(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(train_ != nullptr, "Expected addLora() before optimizerState()");
      return flat_state_to_js(info, 0, flat());
    });
  }

  Napi::Value set_optimizer_state(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(train_ != nullptr, "Expected addLora() before setOptimizerState()");
      Napi::Object o = options_arg(info, 0);
      Busy busy(train_, "setOptimizerState()");
      flat_state_from_js(o, flat());
      return info.Env().Undefined();
    });
  }

  FlatState flat() { return {train_->lora.params, train_->lora.grads, train_->m, train_->v, train_->step}; }

  // enableFullTraining(): every weight becomes a trainable fp32 slice of the flat vector (the
  // model's views point there); LoRA adapters are dropped. Returns the count.
  Napi::Value enable_full_training(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(!train_ || !train_->busy, "Expected no training call running");
      const Gpt2Config& c = state_->config;
      const Gpt2Weights& old = state_->weights;
      const int64_t d = c.dim;
      auto ts = std::make_shared<Gpt2TrainState>();
      Gpt2Lora& L = ts->lora;
      Gpt2Full& F = L.full;
      F.on = true;
      L.layers.resize(static_cast<size_t>(c.layers));
      int64_t total = 0;
      auto take = [&](int64_t size) { const int64_t at = total; total += size; return at; };
      F.wte = take(c.vocab * d), F.wpe = take(c.positions * d), F.lnf_w = take(d), F.lnf_b = take(d);
      F.layers.resize(static_cast<size_t>(c.layers));
      for (int64_t li = 0; li < c.layers; ++li) {
        auto& FL = F.layers[li];
        FL.ln1_w = take(d), FL.ln1_b = take(d), FL.ln2_w = take(d), FL.ln2_b = take(d);
        for (int p = 0; p < kGpt2Projections; ++p) {
          const WeightView& w = gpt2_projection(old.layers[li], p);
          FL.w[p] = take(w.rows * w.cols), FL.b[p] = take(w.cols);
        }
      }
      L.params.assign(static_cast<size_t>(total), 0.0f);
      L.grads.assign(static_cast<size_t>(total), 0.0f);
      ts->m.assign(static_cast<size_t>(total), 0.0f);
      ts->v.assign(static_cast<size_t>(total), 0.0f);
      float* P = L.params.data();
      auto dense = [&](const WeightView& w, int64_t at) {
        for (int64_t r = 0; r < w.rows; ++r) w.decode(r, 0, w.cols, P + at + r * w.cols);
        WeightView v;
        v.format = WeightFormat::F32, v.rows = w.rows, v.cols = w.cols, v.ld = w.cols, v.data = P + at;
        return v;
      };
      auto vec = [&](const float* src, int64_t size, int64_t at) {
        std::copy(src, src + size, P + at);
        return static_cast<const float*>(P + at);
      };
      auto next = std::make_shared<Gpt2State>();
      next->config = c;
      next->owners = {state_, ts};
      Gpt2Weights& W = next->weights;
      W.wte = dense(old.wte, F.wte);
      W.wpe = vec(old.wpe, c.positions * d, F.wpe);
      W.lnf_w = vec(old.lnf_w, d, F.lnf_w), W.lnf_b = vec(old.lnf_b, d, F.lnf_b);
      for (int64_t li = 0; li < c.layers; ++li) {
        const Gpt2Layer& O = old.layers[li];
        const auto& FL = F.layers[li];
        Gpt2Layer N;
        N.ln1_w = vec(O.ln1_w, d, FL.ln1_w), N.ln1_b = vec(O.ln1_b, d, FL.ln1_b);
        N.ln2_w = vec(O.ln2_w, d, FL.ln2_w), N.ln2_b = vec(O.ln2_b, d, FL.ln2_b);
        WeightView* views[kGpt2Projections] = {&N.attn, &N.proj, &N.fc, &N.fc_proj};
        const float* bias[kGpt2Projections] = {O.attn_b, O.proj_b, O.fc_b, O.fc_proj_b};
        const float** nbias[kGpt2Projections] = {&N.attn_b, &N.proj_b, &N.fc_b, &N.fc_proj_b};
        for (int p = 0; p < kGpt2Projections; ++p) {
          const WeightView& w = gpt2_projection(O, p);
          *views[p] = dense(w, FL.w[p]);
          *nbias[p] = vec(bias[p], w.cols, FL.b[p]);
        }
        W.layers.push_back(N);
      }
      state_ = std::move(next);
      train_ = std::move(ts);
      return Napi::Number::New(info.Env(), static_cast<double>(total));
    });
  }

  // fullTensors(which) -> every trainable weight (or its gradient) under Hugging Face names (copies).
  Napi::Value full_tensors(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(train_ && train_->lora.full.on, "Expected enableFullTraining() before fullTensors()");
      const bool grads = info.Length() > 0 && info[0].IsString() && info[0].As<Napi::String>().Utf8Value() == "grads";
      const std::vector<float>& src = grads ? train_->lora.grads : train_->lora.params;
      const Gpt2Full& F = train_->lora.full;
      const Gpt2Config& c = state_->config;
      Napi::Object out = Napi::Object::New(info.Env());
      auto put = [&](const std::string& name, int64_t at, std::vector<int64_t> shape) { put_slice(info.Env(), out, name, src, at, std::move(shape)); };
      put("transformer.wte.weight", F.wte, {c.vocab, c.dim});
      put("transformer.wpe.weight", F.wpe, {c.positions, c.dim});
      put("transformer.ln_f.weight", F.lnf_w, {c.dim});
      put("transformer.ln_f.bias", F.lnf_b, {c.dim});
      for (int64_t li = 0; li < c.layers; ++li) {
        const std::string p = "transformer.h." + std::to_string(li) + ".";
        const auto& FL = F.layers[li];
        put(p + "ln_1.weight", FL.ln1_w, {c.dim}), put(p + "ln_1.bias", FL.ln1_b, {c.dim});
        put(p + "ln_2.weight", FL.ln2_w, {c.dim}), put(p + "ln_2.bias", FL.ln2_b, {c.dim});
        for (int k = 0; k < kGpt2Projections; ++k) {
          const WeightView& w = gpt2_projection(state_->weights.layers[li], k);
          put(p + kGpt2Names[k] + ".weight", FL.w[k], {w.rows, w.cols});
          put(p + kGpt2Names[k] + ".bias", FL.b[k], {w.cols});
        }
      }
      return out;
    });
  }

  // decode(tokens [n], kCache, vCache: f32 [layers, capacity, dim], offset) -> Promise<Tensor [vocab]>:
  // the next-token logits after the cached tokens plus these (adapters applied); the caches are
  // plain tensors the caller keeps (one pair per sequence).
  Napi::Value decode(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      auto* env_state = info.Env().GetInstanceData<AddonState>();
      const Gpt2Config& c = state_->config;
      const Tensor& tokens = AddonTensor::unwrap(info[0], "tokens")->tensor();
      const Tensor& kc = AddonTensor::unwrap(info[1], "kCache")->tensor();
      const Tensor& vc = AddonTensor::unwrap(info[2], "vCache")->tensor();
      const int64_t n = check_tokens(tokens, c.vocab);
      check_arg(kc.dtype == Dtype::F32 && kc.rank() == 3 && kc.shape[0] == c.layers && kc.shape[2] == c.dim && vc.shape == kc.shape && vc.dtype == Dtype::F32,
                "Expected kCache and vCache to be f32 [layers, capacity, dim]");
      const int64_t capacity = kc.shape[1];
      check_arg(info.Length() > 3 && info[3].IsNumber(), "Expected the cached length as fourth argument");
      const int64_t offset = static_cast<int64_t>(info[3].As<Napi::Number>().DoubleValue());
      check_arg(offset >= 0 && offset + n <= capacity && offset + n <= c.positions,
                "Expected at most " + std::to_string(std::min(capacity, c.positions)) + " tokens in the sequence");
      auto train = train_;
      if (train) check_arg(!train->busy, "Expected no training call running while decoding");
      auto out = std::make_shared<Tensor>(Tensor::zeros(Dtype::F32, {c.vocab}));
      auto state = state_;
      auto pool = env_state->pool;
      const Isa isa = env_state->isa;
      Tensor k = kc, v = vc;
      return PromiseWorker::start(
          info.Env(),
          [state, train, pool, isa, tokens, k, v, out, n, offset, capacity] {
            gpt2_decode(state->config, state->weights, train ? &train->lora : nullptr, tokens.data<int32_t>(), n, offset, capacity,
                        const_cast<float*>(k.data<float>()), const_cast<float*>(v.data<float>()), out->data<float>(), isa, *pool);
          },
          [out](Napi::Env env) -> Napi::Value { return AddonTensor::wrap(env, *out); }, {info[0], info[1], info[2], info.This()});
    });
  }

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
      auto train = train_;  // with adapters: the training step's forward, which applies them
      if (train) check_arg(!train->busy, "Expected no training call running during logits()");
      return PromiseWorker::start(
          info.Env(),
          [state, train, pool, isa, tokens, out, n] {
            if (!train) return gpt2_logits(state->config, state->weights, tokens.data<int32_t>(), n, out->data<float>(), isa, *pool);
            std::vector<int32_t> none(static_cast<size_t>(n), -100);
            StepOptions so;
            so.backward = false;
            gpt2_lora_step(state->config, state->weights, train->lora, tokens.data<int32_t>(), none.data(), 1, n, so, isa, *pool, out->data<float>());
          },
          [out](Napi::Env env) -> Napi::Value { return AddonTensor::wrap(env, *out); }, {info[0], info.This()});
    });
  }

  std::shared_ptr<const Gpt2State> state_;
  std::shared_ptr<Gpt2TrainState> train_;
};

}  // namespace

Napi::Function define_gpt2_model(Napi::Env env) { return AddonGpt2::define(env); }

}  // namespace tk
