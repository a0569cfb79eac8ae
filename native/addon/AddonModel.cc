// JS class Model: one binding for every model family (model/family.h) over the shared trainable
// state (model/trainable.h); its generation sessions are AddonSession.cc's ModelSession. Marshalling only: argument checks, options into
// plain structs, results into JS values; the work runs in model/ and optim/, slow calls on a
// worker thread (PromiseWorker).
//
// new Model(family: 'llama' | 'gpt2', config, tensors)
//   logits(tokens [n]) -> Promise<Tensor [n, vocab]>; createSession(capacity) -> ModelSession
//   addLora(options) / enableFullTraining() / addClassifier(options) -> trainable count
//   tensors(kind: 'lora' | 'full' | 'head', which: 'params' | 'grads') -> {name: Tensor} (copies)
//   setTensors(kind, {name: Tensor}); paramGroups() -> [{name, offset, length}]; layout()
//   trainStep(tokens [batch, n], labels, options) -> Promise<{loss, tokens, gradNorm, logits?}>
//   features(tokens, options) -> Promise<Tensor [batch, dim]>; headStep(features, labels, options)
//   optimizerStep(options) -> Promise<{gradNorm, step, tokens}>
//   optimizerState(names?) -> {params, grads, m, v, step, tokens}; setOptimizerState(state)
#include <napi.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "../model/family.h"
#include "AddonTensor.h"
#include "AddonSession.h"
#include "PromiseWorker.h"
#include "addon_state.h"
#include "lora_options.h"
#include "model_weights.h"
#include "operands.h"
#include "options.h"

namespace tk {


// AddonDist.cc: a model's part in data-parallel training.
Napi::Value pass_gradients_binding(const Napi::CallbackInfo& info, const std::shared_ptr<TrainingState>& train);
Napi::Value shard_training_binding(const Napi::CallbackInfo& info, const std::shared_ptr<TrainingState>& train);
namespace {

TrainableKind kind_arg(const Napi::CallbackInfo& info, size_t i) {
  const std::string k = info.Length() > i && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (k == "lora") return TrainableKind::Lora;
  if (k == "full") return TrainableKind::Full;
  if (k == "head") return TrainableKind::Head;
  fail(ErrorCode::InvalidArgument, "Expected a tensor kind 'lora', 'full' or 'head' but received '" + k + "'");
}

const char* kind_call(TrainableKind k) {
  return k == TrainableKind::Lora ? "addLora()" : k == TrainableKind::Full ? "enableFullTraining()" : "addClassifier()";
}

// An i32 tensor [batch, n] of ids in [0, limit) (or -100 when `ignore`); `what` names it in errors.
void check_ids(const Tensor& t, int64_t limit, bool ignore, const char* what) {
  const int32_t* p = t.data<int32_t>();
  for (int64_t i = 0; i < t.numel(); ++i)
    check_arg((ignore && p[i] == kIgnoreIndex) || (p[i] >= 0 && p[i] < limit),
              std::string("Expected ") + what + " in [0, " + std::to_string(limit) + ")" + (ignore ? " or -100" : "") +
                  " but element " + std::to_string(i) + " holds " + std::to_string(p[i]));
}

// An optional tensor option, kept alive by the returned pointer (null when absent).
std::shared_ptr<Tensor> tensor_option(const Napi::Object& o, const char* key) {
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return nullptr;
  return std::make_shared<Tensor>(AddonTensor::unwrap(v, key)->tensor());
}

// lengths [batch] in [1, n], or null.
std::shared_ptr<Tensor> lengths_option(const Napi::Object& o, int64_t batch, int64_t n) {
  auto lengths = tensor_option(o, "lengths");
  if (!lengths) return nullptr;
  check_arg(lengths->dtype == Dtype::I32 && lengths->numel() == batch, "Expected lengths to be an i32 tensor [batch]");
  for (int64_t b = 0; b < batch; ++b)
    check_arg(lengths->data<int32_t>()[b] >= 1 && lengths->data<int32_t>()[b] <= n, "Expected lengths in [1, " + std::to_string(n) + "]");
  return lengths;
}

class AddonModel : public Napi::ObjectWrap<AddonModel> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Model",
                       {InstanceMethod<&AddonModel::logits>("logits"),
                        InstanceMethod<&AddonModel::create_session>("createSession"),
                        InstanceMethod<&AddonModel::add_lora>("addLora"),
                        InstanceMethod<&AddonModel::enable_full_training>("enableFullTraining"),
                        InstanceMethod<&AddonModel::add_classifier>("addClassifier"),
                        InstanceMethod<&AddonModel::tensors>("tensors"),
                        InstanceMethod<&AddonModel::set_tensors>("setTensors"),
                        InstanceMethod<&AddonModel::param_groups>("paramGroups"),
                        InstanceMethod<&AddonModel::layout>("layout"),
                        InstanceMethod<&AddonModel::train_step>("trainStep"),
                        InstanceMethod<&AddonModel::features>("features"),
                        InstanceMethod<&AddonModel::head_step>("headStep"),
                        InstanceMethod<&AddonModel::optimizer_step>("optimizerStep"),
                        InstanceMethod<&AddonModel::optimizer_state>("optimizerState"),
                        InstanceMethod<&AddonModel::set_optimizer_state>("setOptimizerState"),
                        InstanceMethod<&AddonModel::shard_training>("shardTraining"),
                        InstanceMethod<&AddonModel::pass_gradients>("passGradients")});
  }

  explicit AddonModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonModel>(info) {
    guarded(info, [&]() -> Napi::Value {
      check_arg(info.Length() > 0 && info[0].IsString(), "Expected the model family ('llama' or 'gpt2') as first argument");
      Napi::Object cfg = options_arg(info, 1);
      check_arg(info.Length() > 2 && info[2].IsObject(), "Expected an object of tensors as third argument");
      model_ = model_from_js(info[0].As<Napi::String>().Utf8Value(), cfg, info[2].As<Napi::Object>());
      return info.Env().Undefined();
    });
  }

 private:
  // An empty trainable state on the model's backend.
  std::shared_ptr<TrainingState> new_state() const { return std::make_shared<TrainingState>(&model_->backend()); }
  // The state to train, created empty (a frozen model) when none exists yet.
  TrainingState& state() {
    if (!train_) train_ = new_state();
    return *train_;
  }
  // Checks that `t` is [batch, n] i32 tokens of this model; returns {batch, n}.
  std::pair<int64_t, int64_t> check_batch(const Tensor& t) const {
    check_arg(t.dtype == Dtype::I32 && t.rank() == 2 && t.numel() > 0, "Expected tokens to be an i32 tensor [batch, length]");
    const int64_t limit = model_->max_positions();
    check_arg(limit == 0 || t.shape[1] <= limit, "Expected at most " + std::to_string(limit) + " tokens per row (the model's positions) but received " + std::to_string(t.shape[1]));
    check_ids(t, model_->vocab(), false, "token ids");
    return {t.shape[0], t.shape[1]};
  }
  // Whether tensors of that kind can be asked for: adapters of any trainable state (none when it
  // trains every weight), the weights in full fine-tuning, the head once added.
  bool has_kind(TrainableKind k) const {
    if (!train_ || train_->t.tensors.empty()) return false;
    return k == TrainableKind::Lora || (k == TrainableKind::Full ? train_->t.full.on : train_->t.head.on);
  }
  void check_idle(const char* what) const {
    check_arg(!train_ || !train_->busy, std::string("Expected no training call running during ") + what);
  }
  // Replaces the trainable state by a new one built by fn (sessions keep the old one).
  template <class Fn>
  Napi::Value replace_state(const Napi::CallbackInfo& info, const char* what, Fn&& fn) {
    check_idle(what);
    auto next = new_state();
    fn(next->t);
    next->fit_moments();
    train_ = std::move(next);
    return Napi::Number::New(info.Env(), static_cast<double>(train_->t.params.size()));
  }

  // logits(tokens: i32 Tensor [n]) -> Promise<Tensor f32 [n, vocab]>
  Napi::Value logits(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      auto* env_state = info.Env().GetInstanceData<AddonState>();
      const Tensor& tokens = AddonTensor::unwrap(info[0], "tokens")->tensor();
      const int64_t n = check_tokens(tokens, model_->vocab());
      const int64_t limit = model_->max_positions();
      check_arg(limit == 0 || n <= limit, "Expected at most " + std::to_string(limit) + " tokens (the model's positions) but received " + std::to_string(n));
      check_idle("logits()");
      auto out = std::make_shared<Tensor>(Tensor::zeros(Dtype::F32, {n, model_->vocab()}));
      auto model = model_;
      auto train = train_;
      auto pool = env_state->pool;
      const Isa isa = env_state->isa;
      return PromiseWorker::start(
          info.Env(),
          [model, train, pool, isa, tokens, out, n] {
            model->logits(train ? &train->t : nullptr, tokens.data<int32_t>(), n, out->data<float>(), model->context(isa, pool.get()));
          },
          [out](Napi::Env env) -> Napi::Value { return AddonTensor::wrap(env, *out); }, {info[0], info.This()});
    });
  }

  // createSession(capacity = 2048) -> ModelSession with room for `capacity` tokens.
  Napi::Value create_session(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("capacity", info.Length() > 0 ? info[0] : info.Env().Undefined());
      const int64_t capacity = option_int(o, "capacity", 2048, 1, int64_t{1} << 20);
      const int64_t limit = model_->max_positions();
      check_arg(limit == 0 || capacity <= limit, "Expected prompt + maxTokens <= " + std::to_string(limit) +
                                                     " (the model's positions) but received " + std::to_string(capacity));
      auto session = std::make_shared<SessionState>();
      auto* env_state = info.Env().GetInstanceData<AddonState>();
      session->model = model_, session->train = train_;
      session->cache = model_->new_cache(capacity, model_->context(env_state->isa, env_state->pool.get()));
      return env_state->session_ctor.New({Napi::External<std::shared_ptr<SessionState>>::New(info.Env(), &session)});
    });
  }

  // addLora({r, alpha, rslora, dropout, targets, layers, seed}): adapters as PEFT initializes them
  // (A uniform in ±1/sqrt(in), B zero), replacing any previous trainable state.
  Napi::Value add_lora(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      Napi::Object o = options_arg(info, 0);
      check_arg(!train_ || !train_->t.head.on, "Expected addLora() before addClassifier() (the classifier would be dropped)");
      const LoraSpec spec = lora_spec_option(o);
      std::vector<std::string> targets = model_->lora_targets();
      const Napi::Value tv = o.Get("targets");
      if (!tv.IsUndefined()) {
        check_arg(tv.IsArray(), "Expected an array of module names for targets");
        targets.clear();
        Napi::Array a = tv.As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); ++i) targets.push_back(a.Get(i).IsString() ? a.Get(i).As<Napi::String>().Utf8Value() : "");
      }
      const std::vector<bool> layers = layer_mask_option(o, model_->layers());
      return replace_state(info, "addLora()", [&](Trainable& t) { model_->add_lora(t, spec, targets, layers); });
    });
  }

  // enableFullTraining(): every weight becomes a trainable fp32 tensor; adapters are dropped.
  Napi::Value enable_full_training(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(!train_ || !train_->t.head.on, "Expected enableFullTraining() before addClassifier() (the classifier would be dropped)");
      return replace_state(info, "enableFullTraining()", [&](Trainable& t) {
        auto* env_state = info.Env().GetInstanceData<AddonState>();
        model_->enable_full_training(t, model_->context(env_state->isa, env_state->pool.get()));
      });
    });
  }

  // addClassifier({classes, hidden = 0, pooling = 'last' | 'mean', token = false, seed}) -> the head's count
  Napi::Value add_classifier(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      Napi::Object o = options_arg(info, 0);
      check_idle("addClassifier()");
      check_arg(!train_ || !train_->t.head.on, "Expected one classifier per model; it already has one");
      ClassifierHead h;
      h.dim = model_->dim();
      h.classes = option_int(o, "classes", 0, 2, 1 << 20);
      h.hidden = option_int(o, "hidden", 0, 0, 1 << 20);
      h.token_level = option_bool(o, "token", false);
      const std::string pooling = option_string(o, "pooling", "last");
      check_arg(pooling == "last" || pooling == "mean", "Expected pooling 'last' or 'mean' but received '" + pooling + "'");
      h.mean_pool = pooling == "mean";
      const uint64_t seed = static_cast<uint64_t>(option_int(o, "seed", 0, 0, int64_t{1} << 53)) ^ 0x5eedULL;
      const int64_t before = static_cast<int64_t>(state().t.params.size());
      train_ = train_->with_head(h, seed);
      return Napi::Number::New(info.Env(), static_cast<double>(train_->t.params.size() - before));
    });
  }

  // tensors(kind, which = 'params' | 'grads') -> {name: Tensor} (copies), in layout order.
  Napi::Value tensors(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      const TrainableKind kind = kind_arg(info, 0);
      const std::string which = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "params";
      check_arg(which == "params" || which == "grads", "Expected 'params' or 'grads' but received '" + which + "'");
      check_idle("tensors()");
      check_arg(has_kind(kind), std::string("Expected ") + kind_call(kind) + " before reading its tensors");
      Napi::Object out = Napi::Object::New(info.Env());
      const FlatVector& src = which == "params" ? train_->t.params : train_->t.grads;
      for (const TrainableTensor& t : train_->t.tensors) {
        if (t.kind != kind) continue;
        Tensor copy = Tensor::zeros(Dtype::F32, t.shape);
        src.read(t.offset, t.numel(), copy.data<float>());
        out.Set(t.name, AddonTensor::wrap(info.Env(), copy));
      }
      return out;
    });
  }

  // setTensors(kind, {name: Tensor}): copies the given tensors in (names and shapes as tensors() gives them).
  Napi::Value set_tensors(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      const TrainableKind kind = kind_arg(info, 0);
      check_arg(info.Length() > 1 && info[1].IsObject(), "Expected an object of tensors as second argument");
      Napi::Object in = info[1].As<Napi::Object>();
      check_arg(has_kind(kind), std::string("Expected ") + kind_call(kind) + " before setting its tensors");
      TrainingGuard guard(*train_, "setTensors()");
      Napi::Array keys = in.GetPropertyNames();
      std::vector<std::pair<const TrainableTensor*, Tensor>> take;  // all checked before any is copied
      for (uint32_t i = 0; i < keys.Length(); ++i) {
        const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
        const TrainableTensor* t = train_->t.find(key);
        check_arg(t && t->kind == kind, "Expected a trainable tensor name but received " + key);
        const Tensor& v = AddonTensor::unwrap(in.Get(key), key.c_str())->tensor();
        Tensor want;  // for its shape string
        want.shape = t->shape;
        check_arg(v.dtype == Dtype::F32 && v.numel() == t->numel(), "Expected " + key + " to be f32 " + want.shape_string() + " but received " + dtype_name(v.dtype) + " " + v.shape_string());
        take.push_back({t, v});
      }
      for (const auto& [t, v] : take) train_->t.params.write(t->offset, t->numel(), v.data<float>());
      return info.Env().Undefined();
    });
  }

  // paramGroups() -> [{name, offset, length}]: the trainable vector by group, bottom to top.
  Napi::Value param_groups(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(train_ && !train_->t.tensors.empty(), "Expected addLora(), enableFullTraining() or addClassifier() before paramGroups()");
      Napi::Array out = Napi::Array::New(info.Env());
      for (const ParamGroup& g : train_->t.groups()) {
        Napi::Object o = Napi::Object::New(info.Env());
        o.Set("name", g.name), o.Set("offset", static_cast<double>(g.offset)), o.Set("length", static_cast<double>(g.length));
        out.Set(out.Length(), o);
      }
      return out;
    });
  }

  // layout() -> [{name, kind, offset, shape}]: every trainable tensor's place in the flat vector, in order.
  Napi::Value layout(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      Napi::Array out = Napi::Array::New(info.Env());
      if (!train_) return out;
      const char* kinds[] = {"lora", "full", "head"};
      for (const TrainableTensor& t : train_->t.tensors) {
        Napi::Object o = Napi::Object::New(info.Env());
        Napi::Array shape = Napi::Array::New(info.Env(), t.shape.size());
        for (size_t i = 0; i < t.shape.size(); ++i) shape.Set(static_cast<uint32_t>(i), static_cast<double>(t.shape[i]));
        o.Set("name", t.name), o.Set("kind", kinds[static_cast<int>(t.kind)]), o.Set("offset", static_cast<double>(t.offset));
        o.Set("shape", shape);
        out.Set(out.Length(), o);
      }
      return out;
    });
  }

  // trainStep(tokens i32 [batch, n], labels, {bf16, checkpoint, backward, positions, lengths, seed, weightCache})
  //   -> Promise<{loss, tokens, gradNorm, logits?}>: gradients of the summed loss added (gradNorm: theirs so far).
  Napi::Value train_step(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      auto* env_state = info.Env().GetInstanceData<AddonState>();
      const Tensor& tokens = AddonTensor::unwrap(info[0], "tokens")->tensor();
      const Tensor& labels = AddonTensor::unwrap(info[1], "labels")->tensor();
      const auto [batch, n] = check_batch(tokens);
      const Napi::Object o = options_arg(info, 2);
      StepOptions so;
      so.bf16 = option_bool(o, "bf16", false);
      so.checkpoint = option_bool(o, "checkpoint", false);
      so.logit_rows = option_int(o, "logitRows", 0, 0, int64_t{1} << 40);
      so.backward = option_bool(o, "backward", true);
      so.seed = static_cast<uint64_t>(option_int(o, "seed", 0, 0, int64_t{1} << 53));
      so.keep_weights = so.bf16 && option_bool(o, "weightCache", false);
      check_arg(!so.backward || (train_ && !train_->t.tensors.empty()), "Expected addLora(), enableFullTraining() or addClassifier() before trainStep()");
      // Labels: next tokens for the LM head, or class ids for a classifier ([batch] per sequence, [batch, n] per token).
      const ClassifierHead* head = train_ && train_->t.head.on ? &train_->t.head : nullptr;
      const bool per_sequence = head && !head->token_level;
      check_arg(labels.dtype == Dtype::I32 && (per_sequence ? labels.numel() == batch : labels.shape == tokens.shape),
                per_sequence ? "Expected one class label per sequence: an i32 tensor [batch]" : "Expected labels of the same shape as tokens");
      check_ids(labels, head ? head->classes : model_->vocab(), true, "labels");
      auto positions = tensor_option(o, "positions");
      if (positions) {
        check_arg(positions->dtype == Dtype::I32 && positions->shape == tokens.shape, "Expected positions to be an i32 tensor shaped like tokens");
        const int32_t* p = positions->data<int32_t>();
        for (int64_t i = 0; i < batch * n; ++i)
          check_arg(p[i] == 0 || (i % n != 0 && p[i] == p[i - 1] + 1),
                    "Expected positions that start each row at 0 and count up by one (0 starts a packed example) but element " +
                        std::to_string(i) + " holds " + std::to_string(p[i]));
        so.positions = p;
      }
      auto lengths = lengths_option(o, batch, n);
      so.lengths = lengths ? lengths->data<int32_t>() : nullptr;
      std::shared_ptr<Tensor> head_logits;
      if (head) {
        head_logits = std::make_shared<Tensor>(Tensor::zeros(Dtype::F32, {head->token_level ? batch * n : batch, head->classes}));
        so.logits = head_logits->data<float>();
      }
      auto train = train_ ? train_ : new_state();  // evaluating the frozen model
      auto guard = std::make_shared<TrainingGuard>(*train, so.backward ? "trainStep()" : "evaluation");
      auto model = model_;
      auto pool = env_state->pool;
      const Isa isa = env_state->isa;
      auto result = std::make_shared<std::array<double, 5>>();
      std::shared_ptr<Comm> comm = so.backward && train->reduces_in_backward() ? backend_comm(model_->backend(), env_state->comm) : nullptr;
      return PromiseWorker::start(
          info.Env(),
          [model, train, guard, pool, isa, tokens, labels, positions, lengths, head_logits, batch, n, result, so, comm]() mutable {
            std::unique_ptr<GradientReducer> reducer;
            if (comm) {  // ZeRO-2: each group reduced to its owner as soon as the backward is done with it
              reducer = std::make_unique<GradientReducer>(*comm, train->layout(), train->gradient_groups(), train->t.grads.data(),
                                                          *train->t.grads.backend());
              so.listener = reducer.get();
            }
            const StepResult r = model->step(train->t, tokens.data<int32_t>(), labels.data<int32_t>(), batch, n, so,
                                            model->context(isa, pool.get()));
            if (reducer) reducer->finish();
            const double norm = so.backward ? train->add_backward(r.count, model->context(isa, pool.get())) : 0.0;
            *result = {r.loss, static_cast<double>(r.count), norm, reducer ? reducer->comm_seconds() : 0.0, reducer ? reducer->comm_bytes() : 0.0};
          },
          [result, head_logits](Napi::Env env) -> Napi::Value {
            Napi::Object out = Napi::Object::New(env);
            out.Set("loss", (*result)[0]), out.Set("tokens", (*result)[1]), out.Set("gradNorm", (*result)[2]);
            out.Set("commSeconds", (*result)[3]), out.Set("commBytes", (*result)[4]);  // ZeRO-2's reductions in the backward
            if (head_logits) out.Set("logits", AddonTensor::wrap(env, *head_logits));
            return out;
          },
          {info[0], info[1], info.This()});
    });
  }

  // features(tokens i32 [batch, n], {lengths, pooling = 'last' | 'mean', bf16}) -> Promise<Tensor f32 [batch, dim]>:
  // the final normed hidden states pooled per sequence (adapters applied).
  Napi::Value features(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      auto* env_state = info.Env().GetInstanceData<AddonState>();
      const Tensor& tokens = AddonTensor::unwrap(info[0], "tokens")->tensor();
      const auto [batch, n] = check_batch(tokens);
      const Napi::Object o = options_arg(info, 1);
      auto lengths = lengths_option(o, batch, n);
      const std::string pooling = option_string(o, "pooling", "last");
      check_arg(pooling == "last" || pooling == "mean", "Expected pooling 'last' or 'mean' but received '" + pooling + "'");
      StepOptions so;
      so.backward = false, so.bf16 = option_bool(o, "bf16", false), so.mean_pool = pooling == "mean";
      so.lengths = lengths ? lengths->data<int32_t>() : nullptr;
      auto out = std::make_shared<Tensor>(Tensor::zeros(Dtype::F32, {batch, model_->dim()}));
      so.features = out->data<float>();
      auto train = train_ ? train_ : new_state();
      auto guard = std::make_shared<TrainingGuard>(*train, "features()");
      auto labels = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(batch * n), kIgnoreIndex);
      auto model = model_;
      auto pool = env_state->pool;
      const Isa isa = env_state->isa;
      return PromiseWorker::start(
          info.Env(),
          [model, train, guard, pool, isa, tokens, lengths, labels, out, batch, n, so] {
            model->step(train->t, tokens.data<int32_t>(), labels->data(), batch, n, so, model->context(isa, pool.get()));
          },
          [out](Napi::Env env) -> Napi::Value { return AddonTensor::wrap(env, *out); }, {info[0], info.This()});
    });
  }

  // headStep(features f32 [batch, dim], labels i32 [batch], {backward = true}) -> {loss, tokens, gradNorm, logits}:
  // the sequence head alone on precomputed features (small: batch x dim x classes, run here).
  Napi::Value head_step(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(train_ && train_->t.head.on && !train_->t.head.token_level, "Expected a sequence classifier (addClassifier) before headStep()");
      const ClassifierHead& h = train_->t.head;
      const Tensor& x = f32_matrix(info[0], "features", -1, h.dim);
      const int64_t batch = x.shape[0];
      const Tensor& labels = AddonTensor::unwrap(info[1], "labels")->tensor();
      check_arg(labels.dtype == Dtype::I32 && labels.numel() == batch, "Expected one class label per row: an i32 tensor [batch]");
      check_ids(labels, h.classes, true, "labels");
      const bool backward = option_bool(options_arg(info, 2), "backward", true);
      TrainingGuard guard(*train_, "headStep()");
      Tensor logits = Tensor::zeros(Dtype::F32, {batch, h.classes});
      auto* env_state = info.Env().GetInstanceData<AddonState>();
      const CrossEntropyResult ce = tk::head_step(train_->t, x.data<float>(), batch, labels.data<int32_t>(), backward, logits.data<float>(),
                                                  model_->context(env_state->isa, env_state->pool.get()));
      Napi::Object out = Napi::Object::New(info.Env());
      out.Set("loss", ce.loss), out.Set("tokens", static_cast<double>(ce.count));
      out.Set("gradNorm", backward ? train_->add_backward(ce.count, model_->context(env_state->isa, env_state->pool.get())) : 0.0);
      out.Set("logits", AddonTensor::wrap(info.Env(), logits));
      return out;
    });
  }

  // optimizerStep({lr, beta1, beta2, eps, weightDecay, maxGradNorm, lrScales}) -> Promise<{gradNorm, step, tokens}>:
  // divides the gradient sums by the window's labelled tokens, clips them by global norm (as
  // torch's clip_grad_norm_), steps AdamW (lrScales: [{offset, length, scale}]), zeroes them.
  Napi::Value optimizer_step(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(train_ && !train_->t.tensors.empty(), "Expected addLora(), enableFullTraining() or addClassifier() before optimizerStep()");
      Napi::Object o = options_arg(info, 0);
      check_arg(!o.Get("lr").IsUndefined(), "Expected lr for optimizerStep()");
      auto args = std::make_shared<OptimizerStepArgs>();
      args->adamw = adamw_options<AdamWConfig>(o, 0.0, 0.0);
      args->max_grad_norm = option_number(o, "maxGradNorm", 0.0);
      check_arg(args->adamw.lr >= 0 && args->max_grad_norm >= 0, "Expected lr >= 0 and maxGradNorm >= 0");
      const int64_t size = static_cast<int64_t>(train_->t.params.size());
      const Napi::Value sv = o.Get("lrScales");
      if (!sv.IsUndefined()) {
        check_arg(sv.IsArray(), "Expected lrScales to be an array of {offset, length, scale}");
        Napi::Array a = sv.As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); ++i) {
          check_arg(a.Get(i).IsObject(), "Expected lrScales to be an array of {offset, length, scale}");
          Napi::Object r = a.Get(i).As<Napi::Object>();
          const int64_t at = option_int(r, "offset", 0, 0, size), len = option_int(r, "length", 0, 0, size - at);
          const double k = option_number(r, "scale", 1.0);
          check_arg(k >= 0, "Expected lrScales[].scale >= 0 but received " + std::to_string(k));
          args->lr_scales.push_back({at, len, static_cast<float>(k)});
        }
      }
      auto train = train_;
      auto guard = std::make_shared<TrainingGuard>(*train, "optimizerStep()");
      auto result = std::make_shared<OptimizerStepResult>();
      auto* env_state = info.Env().GetInstanceData<AddonState>();
      auto pool = env_state->pool;
      const ExecContext x = model_->context(env_state->isa, pool.get());
      auto model = model_;
      std::shared_ptr<Comm> comm = backend_comm(model_->backend(), env_state->comm);  // kept alive by the call
      return PromiseWorker::start(
          info.Env(),
          [train, guard, args, result, pool, model, x, comm] { *result = step_optimizer(*train, *args, comm ? *comm : single_process_comm(), x); },
          [train, result](Napi::Env env) -> Napi::Value {
            Napi::Object out = Napi::Object::New(env);
            out.Set("gradNorm", result->grad_norm), out.Set("step", static_cast<double>(train->step)), out.Set("tokens", result->tokens);
            out.Set("commSeconds", result->comm_seconds), out.Set("commBytes", result->comm_bytes);
            return out;
          },
          {info.This()});
    });
  }

  // optimizerState(names?) -> {params, grads, m, v: Tensor f32 [n] (copies), step, tokens}: the
  // flat trainable state in layout order (what a checkpoint saves to resume exactly); `names`
  // picks which vectors to copy.
  Napi::Value optimizer_state(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(train_ && !train_->t.tensors.empty(), "Expected addLora(), enableFullTraining() or addClassifier() before optimizerState()");
      check_idle("optimizerState()");
      std::vector<std::string> want;  // a full model's state is four model-sized vectors: copy only these
      if (info.Length() > 0 && info[0].IsArray()) {
        Napi::Array a = info[0].As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); ++i) want.push_back(a.Get(i).ToString().Utf8Value());
      }
      Napi::Object out = Napi::Object::New(info.Env());
      auto put = [&](const char* name, const FlatVector& v) {
        if (!want.empty() && std::find(want.begin(), want.end(), name) == want.end()) return;
        Tensor t = Tensor::zeros(Dtype::F32, {v.size()});
        v.read(0, v.size(), t.data<float>());
        out.Set(name, AddonTensor::wrap(info.Env(), t));
      };
      put("params", train_->t.params), put("grads", train_->t.grads), put("m", train_->m), put("v", train_->v);
      // Where m and v sit in the layout: this rank's shard at ZeRO stages 1 and 2.
      out.Set("momentsSharded", train_->moments_sharded());
      out.Set("momentsOffset", static_cast<double>(train_->moments_begin()));
      out.Set("momentsLength", static_cast<double>(std::min(train_->m.size(), train_->t.params.size() - train_->moments_begin())));
      out.Set("step", static_cast<double>(train_->step));
      out.Set("tokens", train_->tokens);
      return out;
    });
  }

  // setOptimizerState({params, grads?, m, v, step, tokens?}): restores what optimizerState() gave
  // (same layout, same sizes); grads and tokens default to zero.
  Napi::Value set_optimizer_state(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_arg(train_ && !train_->t.tensors.empty(), "Expected addLora(), enableFullTraining() or addClassifier() before setOptimizerState()");
      Napi::Object o = options_arg(info, 0);
      TrainingGuard guard(*train_, "setOptimizerState()");
      const int64_t size = static_cast<int64_t>(train_->t.params.size());
      const int64_t step = option_int(o, "step", 0, 0, int64_t{1} << 53);
      const double tokens = option_number(o, "tokens", 0.0);
      check_arg(tokens >= 0, "Expected tokens >= 0");
      struct Part {
        const char* name;
        FlatVector* into;
        bool optional;
        const Tensor* from = nullptr;
      };
      Part parts[4] = {{"params", &train_->t.params, false}, {"m", &train_->m, false}, {"v", &train_->v, false}, {"grads", &train_->t.grads, true}};
      // m and v: the whole vectors (this rank keeps its shard), or exactly this rank's shard.
      const int64_t begin = train_->moments_begin(), kept = train_->m.size();
      for (Part& p : parts) {  // all checked before any is copied
        const Napi::Value v = o.Get(p.name);
        if (v.IsUndefined() && p.optional) continue;
        p.from = &AddonTensor::unwrap(v, p.name)->tensor();
        const bool moment = p.into == &train_->m || p.into == &train_->v;
        const bool fits = p.from->numel() == size || (moment && p.from->numel() == kept);
        check_arg(p.from->dtype == Dtype::F32 && fits,
                  std::string("Expected ") + p.name + " to be f32 [" + std::to_string(size) + "]" +
                      (moment && kept != size ? " or this rank's shard [" + std::to_string(kept) + "]" : "") + " but received " +
                      p.from->shape_string());
      }
      for (Part& p : parts) {
        if (!p.from) {
          p.into->fill_zero();
        } else if (p.from->numel() == p.into->size()) {
          p.into->write(0, p.into->size(), p.from->data<float>());
        } else {  // whole moments into a shard
          p.into->fill_zero();
          p.into->write(0, std::min(kept, size - begin), p.from->data<float>() + begin);
        }
      }
      train_->step = step;
      train_->tokens = tokens;
      return info.Env().Undefined();
    });
  }

  // The data-parallel methods, in AddonDist.cc with the rest of the group's surface.
  Napi::Value pass_gradients(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value { return pass_gradients_binding(info, train_); });
  }
  Napi::Value shard_training(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value { return shard_training_binding(info, train_); });
  }

  std::shared_ptr<const ModelFamily> model_;
  std::shared_ptr<TrainingState> train_;
};

}  // namespace

Napi::Function define_model(Napi::Env env) {
  env.GetInstanceData<AddonState>()->session_ctor = Napi::Persistent(define_model_session(env));
  return AddonModel::define(env);
}

}  // namespace tk
