// LlamaModel's classifier heads: addClassifier appends a head's weights to the trainable flat
// vector (creating an empty trainable state for a frozen decoder), features() runs the decoder
// and pools its last hidden states (for feature-based training), headStep() trains or evaluates
// the head alone on given features, and headTensors()/setHeadTensors() move its weights.
#include <algorithm>
#include <cmath>

#include "../model/llama_lora.h"
#include "../optim/adamw.h"
#include "AddonLlama.h"
#include "../core/random.h"
#include "AddonTensor.h"
#include "trainable_state.h"
#include "PromiseWorker.h"
#include "addon_state.h"

namespace tk {
namespace {

// Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), as torch.nn.Linear initializes its weight.
void init_uniform(float* w, int64_t count, int64_t fan_in, uint64_t& seed) {
  fill_uniform(w, count, static_cast<float>(1.0 / std::sqrt(static_cast<double>(fan_in))), seed);
}

}  // namespace

// addClassifier({classes, hidden = 0, pooling = 'last' | 'mean', token = false, seed}) -> trainable count
Napi::Value AddonLlama::add_classifier(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Object o = options_arg(info, 0);
    check_arg(!lora_ || !lora_->busy, "Expected no training call running");
    check_arg(!lora_ || !lora_->lora.head.on, "Expected one classifier per model; it already has one");
    const LlamaConfig& c = state_->config;
    ClassifierHead h;
    h.on = true;
    h.dim = c.dim;
    h.classes = option_int(o, "classes", 0, 2, 1 << 20);
    h.hidden = option_int(o, "hidden", 0, 0, 1 << 20);
    h.token_level = option_bool(o, "token", false);
    const std::string pooling = o.Get("pooling").IsString() ? o.Get("pooling").As<Napi::String>().Utf8Value() : "last";
    check_arg(pooling == "last" || pooling == "mean", "Expected pooling 'last' or 'mean' but received '" + pooling + "'");
    h.mean_pool = pooling == "mean";
    uint64_t seed = static_cast<uint64_t>(option_int(o, "seed", 0, 0, int64_t{1} << 53)) ^ 0x5eedULL;
    if (!lora_) {  // a frozen decoder: the head is all that trains
      lora_ = std::make_shared<LoraState>();
      lora_->lora.layers.resize(static_cast<size_t>(c.layers));
    }
    if (lora_->lora.full.on) {
      // The decoder's weights live in the parameter vector, which is about to grow (and move):
      // continue on a copy and point the weights at it; sessions keep the old pair.
      auto copy = std::make_shared<LoraState>();
      copy->lora = lora_->lora;
      copy->m = lora_->m, copy->v = lora_->v, copy->step = lora_->step;
      const int64_t extra = (h.hidden > 0 ? h.hidden : h.classes) * (h.dim + 1) + (h.hidden > 0 ? h.classes * (h.hidden + 1) : 0);
      copy->lora.params.reserve(copy->lora.params.size() + static_cast<size_t>(extra));
      const float* from = lora_->lora.params.data();
      const float* to = copy->lora.params.data();
      const size_t size = lora_->lora.params.size();
      auto rebase = [&](const float* p) { return p >= from && p < from + size ? to + (p - from) : p; };
      auto next = std::make_shared<LlamaState>(*state_);
      next->owners = {state_, copy};
      LlamaWeights& W = next->weights;
      auto view = [&](WeightView& v) { v.data = rebase(static_cast<const float*>(v.data)); };
      view(W.embed), view(W.lm_head);
      W.out_norm = rebase(W.out_norm);
      for (LlamaLayer& L : W.layers) {
        L.attn_norm = rebase(L.attn_norm), L.ffn_norm = rebase(L.ffn_norm);
        for (WeightView* v : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) view(*v);
      }
      state_ = std::move(next);
      lora_ = std::move(copy);
    }
    LlamaLora& L = lora_->lora;
    int64_t at = static_cast<int64_t>(L.params.size());
    const int64_t first_out = h.hidden > 0 ? h.hidden : h.classes;
    h.w1 = at, at += first_out * h.dim;
    h.b1 = at, at += first_out;
    if (h.hidden > 0) h.w2 = at, at += h.classes * h.hidden, h.b2 = at, at += h.classes;
    const size_t total = static_cast<size_t>(at);
    L.params.resize(total, 0.0f);
    L.grads.resize(total, 0.0f);
    lora_->m.resize(total, 0.0f);
    lora_->v.resize(total, 0.0f);
    init_uniform(L.params.data() + h.w1, first_out * h.dim, h.dim, seed);
    if (h.hidden > 0) init_uniform(L.params.data() + h.w2, h.classes * h.hidden, h.hidden, seed);
    L.head = h;
    return Napi::Number::New(info.Env(), static_cast<double>(at - h.w1));
  });
}

// headTensors(which = 'params' | 'grads') -> {"head.w1": [out, dim], "head.b1", "head.w2", "head.b2"} (copies)
Napi::Value AddonLlama::head_tensors(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    check_arg(lora_ && lora_->lora.head.on, "Expected addClassifier() before headTensors()");
    const std::string which = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "params";
    const std::vector<float>& src = which == "grads" ? lora_->lora.grads : lora_->lora.params;
    const ClassifierHead& h = lora_->lora.head;
    Napi::Object out = Napi::Object::New(info.Env());
    auto put = [&](const std::string& name, int64_t at, std::vector<int64_t> shape) { put_slice(info.Env(), out, name, src, at, std::move(shape)); };
    const int64_t first_out = h.hidden > 0 ? h.hidden : h.classes;
    put("head.w1", h.w1, {first_out, h.dim});
    put("head.b1", h.b1, {first_out});
    if (h.hidden > 0) put("head.w2", h.w2, {h.classes, h.hidden}), put("head.b2", h.b2, {h.classes});
    return out;
  });
}

// setHeadTensors({"head.w1": Tensor, ...}): copies the given head weights in.
Napi::Value AddonLlama::set_head_tensors(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    check_arg(lora_ && lora_->lora.head.on, "Expected addClassifier() before setHeadTensors()");
    Napi::Object in = options_arg(info, 0);
    BusyGuard guard(lora_->busy, "setHeadTensors()");
    const ClassifierHead& h = lora_->lora.head;
    const int64_t first_out = h.hidden > 0 ? h.hidden : h.classes;
    auto take = [&](const char* name, int64_t at, int64_t count) {
      const Napi::Value v = in.Get(name);
      if (v.IsUndefined() || at < 0) return;
      const Tensor& t = AddonTensor::unwrap(v, name)->tensor();
      check_arg(t.dtype == Dtype::F32 && t.numel() == count, std::string("Expected ") + name + " to be f32 with " + std::to_string(count) + " elements");
      std::copy(t.data<float>(), t.data<float>() + count, lora_->lora.params.begin() + at);
    };
    take("head.w1", h.w1, first_out * h.dim);
    take("head.b1", h.b1, first_out);
    take("head.w2", h.w2, h.classes * h.hidden);
    take("head.b2", h.b2, h.classes);
    return info.Env().Undefined();
  });
}

// features(tokens i32 [batch, n], {lengths, pooling = 'last' | 'mean', bf16}) -> Promise<Tensor f32 [batch, dim]>:
// the decoder's final normed hidden states, pooled per sequence (adapters applied if any).
Napi::Value AddonLlama::features(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* env_state = info.Env().GetInstanceData<AddonState>();
    const Tensor& tokens = AddonTensor::unwrap(info[0], "tokens")->tensor();
    check_arg(tokens.dtype == Dtype::I32 && tokens.rank() == 2 && tokens.numel() > 0, "Expected tokens to be an i32 tensor [batch, length]");
    const LlamaConfig& c = state_->config;
    const int64_t batch = tokens.shape[0], n = tokens.shape[1];
    for (int64_t i = 0; i < batch * n; ++i) {
      const int32_t id = tokens.data<int32_t>()[i];
      check_arg(id >= 0 && id < c.vocab, "Expected token ids in [0, " + std::to_string(c.vocab) + ") but element " + std::to_string(i) + " holds " + std::to_string(id));
    }
    Napi::Object o = options_arg(info, 1);
    std::shared_ptr<Tensor> lengths;
    if (!o.Get("lengths").IsUndefined()) {
      lengths = std::make_shared<Tensor>(AddonTensor::unwrap(o.Get("lengths"), "lengths")->tensor());
      check_arg(lengths->dtype == Dtype::I32 && lengths->numel() == batch, "Expected lengths to be an i32 tensor [batch]");
      for (int64_t b = 0; b < batch; ++b)
        check_arg(lengths->data<int32_t>()[b] >= 1 && lengths->data<int32_t>()[b] <= n, "Expected lengths in [1, " + std::to_string(n) + "]");
    }
    const std::string pooling = o.Get("pooling").IsString() ? o.Get("pooling").As<Napi::String>().Utf8Value() : "last";
    check_arg(pooling == "last" || pooling == "mean", "Expected pooling 'last' or 'mean'");
    // Run the step on a view of the trainable state whose head is the identity (dim -> dim): its
    // "logits" are then exactly the pooled features, and no loss is taken (labels all -100).
    auto view = std::make_shared<LoraState>();
    if (lora_) {
      check_arg(!lora_->busy, "Expected no training call running during features()");
      view->lora.layers = lora_->lora.layers;
      view->lora.params = lora_->lora.params;
      view->lora.full = lora_->lora.full;
    } else {
      view->lora.layers.resize(static_cast<size_t>(c.layers));
    }
    ClassifierHead& h = view->lora.head;
    h.on = true, h.dim = c.dim, h.classes = c.dim, h.mean_pool = pooling == "mean";
    h.w1 = static_cast<int64_t>(view->lora.params.size());
    h.b1 = h.w1 + c.dim * c.dim;
    view->lora.params.resize(static_cast<size_t>(h.b1 + c.dim), 0.0f);
    for (int64_t i = 0; i < c.dim; ++i) view->lora.params[static_cast<size_t>(h.w1 + i * c.dim + i)] = 1.0f;
    auto out = std::make_shared<Tensor>(Tensor::zeros(Dtype::F32, {batch, c.dim}));
    auto labels = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(batch), kIgnoreIndex);
    auto state = state_;
    auto pool = env_state->pool;
    const Isa isa = env_state->isa;
    const bool bf16 = option_bool(o, "bf16", false);
    return PromiseWorker::start(
        info.Env(),
        [state, view, pool, isa, tokens, lengths, labels, out, batch, n, bf16] {
          StepOptions so;
          so.backward = false, so.bf16 = bf16;
          so.lengths = lengths ? lengths->data<int32_t>() : nullptr;
          so.head_logits = out->data<float>();
          llama_lora_step(state->config, state->weights, view->lora, tokens.data<int32_t>(), labels->data(), batch, n, so, isa, *pool);
        },
        [out](Napi::Env env) -> Napi::Value { return AddonTensor::wrap(env, *out); }, {info[0], info.This()});
  });
}

// headStep(features f32 [batch, dim], labels i32 [batch], {backward = true, gradScale}) ->
// {loss, tokens, gradNorm, logits}: the sequence head alone on precomputed features.
Napi::Value AddonLlama::head_step(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    check_arg(lora_ && lora_->lora.head.on && !lora_->lora.head.token_level, "Expected a sequence classifier (addClassifier) before headStep()");
    const ClassifierHead& h = lora_->lora.head;
    const Tensor& x = AddonTensor::unwrap(info[0], "features")->tensor();
    const Tensor& labels = AddonTensor::unwrap(info[1], "labels")->tensor();
    check_arg(x.dtype == Dtype::F32 && x.rank() == 2 && x.shape[1] == h.dim && x.shape[0] > 0,
              "Expected features to be f32 [batch, " + std::to_string(h.dim) + "] but received " + x.shape_string());
    const int64_t batch = x.shape[0];
    check_arg(labels.dtype == Dtype::I32 && labels.numel() == batch, "Expected one class label per row: an i32 tensor [batch]");
    for (int64_t i = 0; i < batch; ++i) {
      const int32_t l = labels.data<int32_t>()[i];
      check_arg(l == -100 || (l >= 0 && l < h.classes), "Expected labels in [0, " + std::to_string(h.classes) + ") or -100");
    }
    Napi::Object o = options_arg(info, 2);
    const bool backward = option_bool(o, "backward", true);
    const float scale = static_cast<float>(option_number(o, "gradScale", 1.0));
    BusyGuard guard(lora_->busy, "headStep()");
    auto& L = lora_->lora;
    Tensor logits = Tensor::zeros(Dtype::F32, {batch, h.classes});
    std::vector<float> dhidden(backward ? static_cast<size_t>(batch * h.dim) : 0);
    auto* env_state = info.Env().GetInstanceData<AddonState>();
    // Small enough to run here: batch x dim x classes.
    ClassifierHead row = h;
    row.mean_pool = false;  // features are already one row per sequence
    const CrossEntropyResult ce = classifier_head_step(row, L.params.data(), L.grads.data(), x.data<float>(), batch, 1, nullptr,
                                                       labels.data<int32_t>(), scale, logits.data<float>(),
                                                       backward ? dhidden.data() : nullptr, *env_state->pool);
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("loss", ce.loss);
    out.Set("tokens", static_cast<double>(ce.count));
    out.Set("gradNorm", backward ? std::sqrt(sum_of_squares(L.grads.data(), static_cast<int64_t>(L.grads.size()))) : 0.0);
    out.Set("logits", AddonTensor::wrap(info.Env(), logits));
    return out;
  });
}

}  // namespace tk
