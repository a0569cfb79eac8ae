// JS class LlamaModel: a Llama-family decoder over weights the caller loaded (GGUF names:
// token_embd, blk.N.attn_norm / attn_q / attn_k / attn_v / attn_output / ffn_norm / ffn_gate /
// ffn_up / ffn_down, output_norm, output when not tied). AddonLlama.cc holds construction,
// logits and decoding sessions; AddonLlamaTrain.cc the trainable state (LoRA or full weights),
// training steps and the optimizer.
#pragma once
#include <napi.h>

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "../model/llama.h"
#include "../model/weight_panels.h"
#include "operands.h"
#include "options.h"

namespace tk {

struct LlamaState {
  LlamaConfig config;
  LlamaWeights weights;
  std::vector<BOperand> matrices;  // keeps every matrix's memory alive
  std::vector<Tensor> vectors;     // and every norm weight's
  std::vector<std::shared_ptr<const void>> owners;  // what else the views point into
  mutable WeightPanelCache panels;  // bf16 GEMM panels of the frozen weights, when steps ask for them
};

// Trainable LoRA adapters of a model, with their gradients and AdamW state (all flat fp32).
// `busy` is held by trainStep/optimizerStep; forward passes refuse to run meanwhile.
struct LoraState {
  LlamaLora lora;
  std::vector<float> m, v;
  int64_t step = 0;
  std::atomic<bool> busy{false};
};

inline const char* const kProjectionNames[kProjections] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
inline const char* const kGgufNames[kProjections] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

inline const WeightView& projection(const LlamaLayer& L, int p) {
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
                        InstanceMethod<&AddonLlama::optimizer_state>("optimizerState"),
                        InstanceMethod<&AddonLlama::add_classifier>("addClassifier"),
                        InstanceMethod<&AddonLlama::param_groups>("paramGroups"),
                        InstanceMethod<&AddonLlama::head_tensors>("headTensors"),
                        InstanceMethod<&AddonLlama::set_head_tensors>("setHeadTensors"),
                        InstanceMethod<&AddonLlama::features>("features"),
                        InstanceMethod<&AddonLlama::head_step>("headStep"),
                        InstanceMethod<&AddonLlama::set_optimizer_state>("setOptimizerState"),
                        InstanceMethod<&AddonLlama::enable_full_training>("enableFullTraining"),
                        InstanceMethod<&AddonLlama::full_tensors>("fullTensors")});
  }

  explicit AddonLlama(const Napi::CallbackInfo& info);

 private:
  Napi::Value logits(const Napi::CallbackInfo& info);
  Napi::Value create_session(const Napi::CallbackInfo& info);
  Napi::Value add_lora(const Napi::CallbackInfo& info);
  Napi::Value lora_tensors(const Napi::CallbackInfo& info);
  Napi::Value set_lora_tensors(const Napi::CallbackInfo& info);
  Napi::Value train_step(const Napi::CallbackInfo& info);
  Napi::Value optimizer_step(const Napi::CallbackInfo& info);
  Napi::Value optimizer_state(const Napi::CallbackInfo& info);
  Napi::Value add_classifier(const Napi::CallbackInfo& info);
  Napi::Value param_groups(const Napi::CallbackInfo& info);
  Napi::Value head_tensors(const Napi::CallbackInfo& info);
  Napi::Value set_head_tensors(const Napi::CallbackInfo& info);
  Napi::Value features(const Napi::CallbackInfo& info);
  Napi::Value head_step(const Napi::CallbackInfo& info);
  Napi::Value set_optimizer_state(const Napi::CallbackInfo& info);
  Napi::Value enable_full_training(const Napi::CallbackInfo& info);
  Napi::Value full_tensors(const Napi::CallbackInfo& info);

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

}  // namespace tk
