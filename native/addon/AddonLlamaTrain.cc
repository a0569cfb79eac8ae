// LlamaModel's training surface: LoRA adapters or full fine-tuning as one flat fp32 parameter
// vector with its gradients and AdamW state, training/evaluation steps, the optimizer step, and
// the optimizer state in and out (for checkpoints that resume exactly).
#include <algorithm>
#include <cmath>

#include "../model/llama_lora.h"
#include "lora_options.h"
#include "../optim/adamw.h"
#include "AddonLlama.h"
#include "AddonTensor.h"
#include "trainable_state.h"
#include "PromiseWorker.h"
#include "addon_state.h"

namespace tk {

namespace {
FlatState flat(LoraState& s) { return {s.lora.params, s.lora.grads, s.m, s.v, s.step}; }
}  // namespace

// addLora({r, alpha, rslora, targets, layers, seed}): adapters as PEFT initializes them
// (A uniform in ±1/sqrt(in), B zero), replacing any previous ones.
Napi::Value AddonLlama::add_lora(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Object o = options_arg(info, 0);
    check_arg(!lora_ || !lora_->lora.head.on, "Expected addLora() before addClassifier() (the classifier would be dropped)");
    const LlamaConfig& c = state_->config;
    const LoraSpec spec = lora_spec_option(o);
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
    const std::vector<bool> layer_on = layer_mask_option(o, c.layers);
    auto ls = std::make_shared<LoraState>();
    LlamaLora& L = ls->lora;
    const int64_t offset = layout_lora(L.layers, c.layers, spec, [&](int64_t li, int p) {
      if (!targets[p] || !layer_on[li]) return std::pair<int64_t, int64_t>{0, 0};
      const WeightView& w = projection(state_->weights.layers[li], p);  // [out, in]
      return std::pair<int64_t, int64_t>{w.cols, w.rows};
    }, L.params);
    L.grads.assign(static_cast<size_t>(offset), 0.0f);
    ls->m.assign(static_cast<size_t>(offset), 0.0f);
    ls->v.assign(static_cast<size_t>(offset), 0.0f);
    lora_ = std::move(ls);
    return Napi::Number::New(info.Env(), static_cast<double>(offset));
  });
}

// loraTensors(which = 'params' | 'grads') -> {"blk.N.attn_q.lora_a": Tensor [r, in], ..._b: [out, r]} (copies)
Napi::Value AddonLlama::lora_tensors(const Napi::CallbackInfo& info) {
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
Napi::Value AddonLlama::set_lora_tensors(const Napi::CallbackInfo& info) {
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

// trainStep(tokens i32 [batch, n], labels i32 [batch, n], {bf16, weightCache, ...}) -> Promise<{loss, tokens, gradNorm}>;
// weightCache: with bf16, keep the frozen weights packed as GEMM panels (llama_lora.h, StepOptions).
// gradients add up across calls (accumulation) until optimizerStep().
Napi::Value AddonLlama::train_step(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* env_state = info.Env().GetInstanceData<AddonState>();
    const Tensor& tokens = AddonTensor::unwrap(info[0], "tokens")->tensor();
    const Tensor& labels = AddonTensor::unwrap(info[1], "labels")->tensor();
    check_arg(tokens.dtype == Dtype::I32 && tokens.rank() == 2 && tokens.numel() > 0,
              "Expected tokens to be an i32 tensor [batch, length]");
    const int64_t vocab = state_->config.vocab, batch = tokens.shape[0], n = tokens.shape[1];
    const int32_t *ids = tokens.data<int32_t>(), *lab = labels.data<int32_t>();
    for (int64_t i = 0; i < batch * n; ++i)
      check_arg(ids[i] >= 0 && ids[i] < vocab, "Expected token ids in [0, " + std::to_string(vocab) + ") but element " +
                                                   std::to_string(i) + " holds " + std::to_string(ids[i]));
    // Labels: next tokens for the LM head, or class ids for a classifier ([batch] per sequence,
    // [batch, n] per token).
    const ClassifierHead* head = lora_ && lora_->lora.head.on ? &lora_->lora.head : nullptr;
    const bool per_sequence = head && !head->token_level;
    check_arg(labels.dtype == Dtype::I32 && (per_sequence ? labels.numel() == batch : labels.shape == tokens.shape),
              per_sequence ? "Expected one class label per sequence: an i32 tensor [batch]" : "Expected labels of the same shape as tokens");
    const int64_t classes = head ? head->classes : vocab;
    for (int64_t i = 0; i < labels.numel(); ++i)
      check_arg(lab[i] == -100 || (lab[i] >= 0 && lab[i] < classes),
                "Expected labels in [0, " + std::to_string(classes) + ") or -100 but element " + std::to_string(i) +
                    " holds " + std::to_string(lab[i]));
    const Napi::Object step_options = options_arg(info, 2);
    StepOptions so;
    so.bf16 = option_bool(step_options, "bf16", false);
    so.checkpoint = option_bool(step_options, "checkpoint", false);
    so.backward = option_bool(step_options, "backward", true);
    so.grad_scale = static_cast<float>(option_number(step_options, "gradScale", 1.0));
    so.seed = static_cast<uint64_t>(option_int(step_options, "seed", 0, 0, int64_t{1} << 53));
    if (so.bf16 && option_bool(step_options, "weightCache", false)) so.panels = &state_->panels;
    check_arg(std::isfinite(so.grad_scale) && so.grad_scale >= 0, "Expected a finite gradScale >= 0");
    check_arg(lora_ != nullptr || !so.backward, "Expected addLora() or enableFullTraining() before trainStep()");
    std::shared_ptr<Tensor> positions;
    const Napi::Value pv = step_options.Get("positions");
    if (!pv.IsUndefined()) {
      positions = std::make_shared<Tensor>(AddonTensor::unwrap(pv, "positions")->tensor());
      check_arg(positions->dtype == Dtype::I32 && positions->shape == tokens.shape,
                "Expected positions to be an i32 tensor shaped like tokens");
      const int32_t* p = positions->data<int32_t>();
      for (int64_t i = 0; i < batch * n; ++i)
        check_arg(p[i] == 0 || (i % n != 0 && p[i] == p[i - 1] + 1),
                  "Expected positions that start each row at 0 and count up by one (0 starts a packed example) but "
                  "element " + std::to_string(i) + " holds " + std::to_string(p[i]));
      so.positions = p;
    }
    std::shared_ptr<Tensor> lengths, head_logits;
    const Napi::Value lv = step_options.Get("lengths");
    if (!lv.IsUndefined()) {
      lengths = std::make_shared<Tensor>(AddonTensor::unwrap(lv, "lengths")->tensor());
      check_arg(lengths->dtype == Dtype::I32 && lengths->numel() == batch, "Expected lengths to be an i32 tensor [batch]");
      for (int64_t b = 0; b < batch; ++b)
        check_arg(lengths->data<int32_t>()[b] >= 1 && lengths->data<int32_t>()[b] <= n,
                  "Expected lengths in [1, " + std::to_string(n) + "]");
      so.lengths = lengths->data<int32_t>();
    }
    if (head) {
      head_logits = std::make_shared<Tensor>(Tensor::zeros(Dtype::F32, {head->token_level ? batch * n : batch, head->classes}));
      so.head_logits = head_logits->data<float>();
    }
    auto lora = lora_;
    if (!lora) {  // evaluating the frozen model: no adapters anywhere
      lora = std::make_shared<LoraState>();
      lora->lora.layers.resize(static_cast<size_t>(state_->config.layers));
    }
    auto guard = std::make_shared<BusyGuard>(lora->busy, so.backward ? "trainStep()" : "evaluation");
    auto state = state_;
    auto pool = env_state->pool;
    const Isa isa = env_state->isa;
    auto result = std::make_shared<std::array<double, 3>>();
    return PromiseWorker::start(
        info.Env(),
        [state, lora, pool, isa, tokens, labels, positions, lengths, head_logits, batch, n, result, guard, so] {
          StepResult r = llama_lora_step(state->config, state->weights, lora->lora, tokens.data<int32_t>(),
                                         labels.data<int32_t>(), batch, n, so, isa, *pool);
          const auto& g = lora->lora.grads;
          const double norm = so.backward ? std::sqrt(sum_of_squares(g.data(), static_cast<int64_t>(g.size()), pool.get())) : 0.0;
          (*result) = {r.loss, static_cast<double>(r.count), norm};
        },
        [result, head_logits](Napi::Env env) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("loss", (*result)[0]);
          o.Set("tokens", (*result)[1]);
          o.Set("gradNorm", (*result)[2]);
          if (head_logits) o.Set("logits", AddonTensor::wrap(env, *head_logits));
          return o;
        },
        {info[0], info[1], info.This()});
  });
}

// optimizerState(names?) -> {params, grads, m, v: Tensor f32 [n] (copies), step}: the flat trainable
// state, in the order the parameters are laid out (what a checkpoint saves to resume exactly).
Napi::Value AddonLlama::optimizer_state(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    check_arg(lora_ != nullptr, "Expected addLora() or enableFullTraining() before optimizerState()");
    check_arg(!lora_->busy, "Expected no training call running during optimizerState()");
    return flat_state_to_js(info, 0, flat(*lora_));
  });
}

// setOptimizerState({params, grads?, m, v, step}): restores what optimizerState() gave (same
// adapters or full training, same sizes); grads default to zero.
Napi::Value AddonLlama::set_optimizer_state(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    check_arg(lora_ != nullptr, "Expected addLora() or enableFullTraining() before setOptimizerState()");
    Napi::Object o = options_arg(info, 0);
    BusyGuard guard(lora_->busy, "setOptimizerState()");
    flat_state_from_js(o, flat(*lora_));
    return info.Env().Undefined();
  });
}

// optimizerStep({lr, beta1, beta2, eps, weightDecay, maxGradNorm}) -> Promise<{gradNorm, step}>: clips the
// accumulated gradients by global norm (as torch's clip_grad_norm_), steps AdamW, zeroes them.
Napi::Value AddonLlama::optimizer_step(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    check_arg(lora_ != nullptr, "Expected addLora() before optimizerStep()");
    Napi::Object o = options_arg(info, 0);
    const AdamWConfig c = adamw_options<AdamWConfig>(o, 1e-4, 0.0);
    const double max_norm = option_number(o, "maxGradNorm", 0.0);
    // lrScales: [{offset, length, scale}] multiply the learning rate of parameter ranges
    // (discriminative rates; 0 freezes a range); the rest steps at scale 1.
    auto scales = std::make_shared<std::vector<float>>(lr_scales_option(o, static_cast<int64_t>(lora_->lora.params.size())));
    auto guard = std::make_shared<BusyGuard>(lora_->busy, "optimizerStep()");
    auto lora = lora_;
    auto result = std::make_shared<std::array<double, 2>>();
    auto pool = info.Env().GetInstanceData<AddonState>()->pool;
    // On a worker thread: with full fine-tuning this touches every weight of the model.
    return PromiseWorker::start(
        info.Env(),
        [lora, c, max_norm, result, guard, scales, pool] {
          const double norm = flat_optimizer_step(flat(*lora), c, max_norm, *scales, pool.get());
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

// paramGroups() -> [{name, offset, length}]: the trainable vector by layer, bottom to top:
// "embed", "layer.N" ..., "output" (final norm + LM head), "head" (a classifier) — for
// discriminative learning rates and gradual unfreezing.
Napi::Value AddonLlama::param_groups(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    check_arg(lora_ != nullptr, "Expected addLora(), enableFullTraining() or addClassifier() before paramGroups()");
    const LlamaLora& L = lora_->lora;
    const LlamaConfig& c = state_->config;
    Napi::Array out = Napi::Array::New(info.Env());
    auto add = [&](const std::string& name, int64_t at, int64_t end) {
      if (end <= at) return;
      Napi::Object g = Napi::Object::New(info.Env());
      g.Set("name", name), g.Set("offset", static_cast<double>(at)), g.Set("length", static_cast<double>(end - at));
      out.Set(out.Length(), g);
    };
    if (L.full.on) {
      const FullTraining& F = L.full;
      add("embed", F.embed, F.embed + c.vocab * c.dim);
      for (int64_t li = 0; li < c.layers; ++li) {
        const int64_t end = li + 1 < c.layers ? F.layers[li + 1].attn_norm : (L.head.on ? L.head.w1 : static_cast<int64_t>(L.params.size()));
        add("layer." + std::to_string(li), F.layers[li].attn_norm, end);
      }
      add("output", F.out_norm, F.lm_head >= 0 ? F.lm_head + c.vocab * c.dim : F.out_norm + c.dim);
    } else {
      for (size_t li = 0; li < L.layers.size(); ++li) {
        int64_t lo = -1, hi = -1;
        for (int p = 0; p < kProjections; ++p) {
          const LoraSlot& s = L.layers[li][p];
          if (!s.on) continue;
          const WeightView& w = projection(state_->weights.layers[li], p);
          if (lo < 0) lo = s.a_offset;
          hi = s.b_offset + w.rows * s.r;
        }
        if (lo >= 0) add("layer." + std::to_string(li), lo, hi);
      }
    }
    if (L.head.on) add("head", L.head.w1, static_cast<int64_t>(L.params.size()));
    return out;
  });
}

// enableFullTraining(): every weight becomes a trainable fp32 slice of one flat buffer (with
// gradients and AdamW state of the same size); LoRA adapters are dropped. Returns the count.
Napi::Value AddonLlama::enable_full_training(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    check_arg(!lora_ || !lora_->busy, "Expected no training call running");
    check_arg(!lora_ || !lora_->lora.head.on, "Expected enableFullTraining() before addClassifier() (the classifier would be dropped)");
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
Napi::Value AddonLlama::full_tensors(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    check_arg(lora_ && lora_->lora.full.on, "Expected enableFullTraining() before fullTensors()");
    const std::string which = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "params";
    check_arg(which == "params" || which == "grads", "Expected 'params' or 'grads'");
    const std::vector<float>& src = which == "params" ? lora_->lora.params : lora_->lora.grads;
    const FullTraining& F = lora_->lora.full;
    const LlamaConfig& c = state_->config;
    Napi::Object out = Napi::Object::New(info.Env());
    auto put = [&](const std::string& name, int64_t at, std::vector<int64_t> shape) { put_slice(info.Env(), out, name, src, at, std::move(shape)); };
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


}  // namespace tk
