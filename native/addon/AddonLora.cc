// loraLinearForward / loraLinearBackward: the fused LoRA linear layer on a worker thread.
#include <napi.h>

#include <cmath>

#include "../backend/registry.h"
#include "PromiseWorker.h"
#include "addon_state.h"
#include "operands.h"
#include "options.h"

namespace tk {
namespace {

// Reads x, w, a, b and the options shared by both directions; checks every shape.
LoraLinearArgs lora_args(const Napi::CallbackInfo& info, const Napi::Object& o, const Tensor& x, const BOperand& w,
                         const Tensor& a, const Tensor& b) {
  LoraLinearArgs g;
  g.m = x.shape[0];
  g.in = x.shape[1];
  g.out = w.rows;
  g.r = a.shape[0];
  check_arg(w.cols == g.in, "Expected w of shape [*, " + std::to_string(g.in) + "] to match x but received [" +
                                std::to_string(w.rows) + ", " + std::to_string(w.cols) + "]");
  check_arg(a.shape[1] == g.in, "Expected lora A of shape [r, " + std::to_string(g.in) + "] but received " +
                                    a.shape_string());
  check_arg(b.shape[0] == g.out && b.shape[1] == g.r, "Expected lora B of shape [" + std::to_string(g.out) + ", " +
                                                          std::to_string(g.r) + "] but received " + b.shape_string());
  g.x = x.data<float>();
  g.w = w.operand(false);
  g.a = a.data<float>();
  g.b = b.data<float>();
  g.scale = static_cast<float>(option_number(o, "scale", 1.0));
  g.dropout = static_cast<float>(option_number(o, "dropout", 0.0));
  check_arg(g.dropout >= 0.0f && g.dropout < 1.0f, "Expected dropout in [0, 1) but received " + std::to_string(g.dropout));
  g.seed = static_cast<uint64_t>(option_int(o, "seed", 0, 0, (int64_t{1} << 53)));
  g.bf16 = option_bool(o, "bf16", false);
  (void)info;
  return g;
}

}  // namespace

// loraLinearForward(x, w, a, b, y, t, options) -> Promise<void>
Napi::Value lora_forward_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* state = info.Env().GetInstanceData<AddonState>();
    const Tensor& x = f32_matrix(info[0], "x");
    const BOperand w = b_operand(info[1], "w");
    const Tensor& a = f32_matrix(info[2], "lora A");
    const Tensor& b = f32_matrix(info[3], "lora B");
    Napi::Object o = options_arg(info, 6);
    LoraLinearArgs g = lora_args(info, o, x, w, a, b);
    const Tensor& y = f32_matrix(info[4], "y", g.m, g.out);
    const Tensor& t = f32_matrix(info[5], "t", g.m, g.r);
    auto pool = state->pool;
    const Isa isa = state->isa;
    std::shared_ptr<Backend> backend = make_backend("cpu");
    return PromiseWorker::start(
        info.Env(),
        [g, pool, isa, backend, x, w, a, b, y, t] {
          backend->ops().lora_linear_forward(backend->context(isa, pool.get()), g, y.data<float>(), t.data<float>());
        },
        nullptr, {info[0], info[1], info[2], info[3], info[4], info[5]});
  });
}

// loraLinearBackward(dy, x, w, a, b, t, dx | null, da, db, options) -> Promise<void>
Napi::Value lora_backward_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* state = info.Env().GetInstanceData<AddonState>();
    const Tensor& x = f32_matrix(info[1], "x");
    const BOperand w = b_operand(info[2], "w");
    const Tensor& a = f32_matrix(info[3], "lora A");
    const Tensor& b = f32_matrix(info[4], "lora B");
    Napi::Object o = options_arg(info, 9);
    LoraLinearArgs g = lora_args(info, o, x, w, a, b);
    const Tensor& dy = f32_matrix(info[0], "dy", g.m, g.out);
    const Tensor& t = f32_matrix(info[5], "t", g.m, g.r);
    Tensor dx;
    if (!info[6].IsNull() && !info[6].IsUndefined()) dx = f32_matrix(info[6], "dx", g.m, g.in);
    const Tensor& da = f32_matrix(info[7], "dA", g.r, g.in);
    const Tensor& db = f32_matrix(info[8], "dB", g.out, g.r);
    auto pool = state->pool;
    const Isa isa = state->isa;
    std::shared_ptr<Backend> backend = make_backend("cpu");
    return PromiseWorker::start(
        info.Env(),
        [g, pool, isa, backend, x, w, a, b, dy, t, dx, da, db] {
          backend->ops().lora_linear_backward(backend->context(isa, pool.get()), g, dy.data<float>(), t.data<float>(),
                                              dx.storage ? dx.data<float>() : nullptr, da.data<float>(), db.data<float>());
        },
        nullptr, {info[0], info[1], info[2], info[3], info[4], info[5], info[6], info[7], info[8]});
  });
}

}  // namespace tk
