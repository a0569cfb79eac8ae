// gemm(a, b, c, options) -> Promise<void>: C = alpha * op(A) * op(B) + beta * C on a worker thread.
// A is a 2-D f32 Tensor; B is a 2-D f32/bf16/f16 Tensor or a Weights object (NF4, GGUF blocks...).
#include <napi.h>

#include "../backend/cpu/kernels.h"
#include "AddonTensor.h"
#include "AddonWeights.h"
#include "PromiseWorker.h"
#include "addon_state.h"
#include "operands.h"
#include "options.h"

namespace tk {

GemmOperand BOperand::operand(bool trans) const {
  GemmOperand o;
  o.trans = trans;
  if (view) {
    o.weights = view.get();
  } else {
    o.data = dense.data<float>();
    o.ld = cols;
  }
  return o;
}

BOperand b_operand(const Napi::Value& value, const char* what) {
  BOperand b;
  if (AddonWeights* w = AddonWeights::unwrap_or_null(value)) {
    b.store = w->store();
    b.view = std::make_shared<WeightView>(b.store->view());
    b.rows = b.store->rows;
    b.cols = b.store->cols;
    return b;
  }
  const Tensor& t = AddonTensor::unwrap(value, what)->tensor();
  check_arg(t.rank() == 2 && (t.dtype == Dtype::F32 || t.dtype == Dtype::BF16 || t.dtype == Dtype::F16),
            std::string("Expected a 2-D f32, bf16 or f16 tensor or Weights for ") + what + " but received " +
                dtype_name(t.dtype) + " " + t.shape_string());
  b.rows = t.shape[0];
  b.cols = t.shape[1];
  b.dense = t;  // the f32 operand, or the storage behind a bf16/f16 view
  if (t.dtype != Dtype::F32) {
    b.view = std::make_shared<WeightView>();
    b.view->format = t.dtype == Dtype::BF16 ? WeightFormat::BF16 : WeightFormat::F16;
    b.view->rows = b.rows;
    b.view->cols = b.cols;
    b.view->data = t.raw();
    b.view->ld = b.cols;
  }
  return b;
}

WeightView named_matrix(const Napi::Object& tensors, const std::string& name, int64_t rows, int64_t cols,
                        std::vector<BOperand>& keep) {
  Napi::Value v = tensors.Get(name);
  check_arg(!v.IsUndefined(), "Expected tensor " + name + " but the model has none");
  keep.push_back(b_operand(v, name.c_str()));
  const BOperand& b = keep.back();
  check_arg(b.rows == rows && b.cols == cols, "Expected " + name + " of shape [" + std::to_string(rows) + ", " +
                                                  std::to_string(cols) + "] but found [" + std::to_string(b.rows) +
                                                  ", " + std::to_string(b.cols) + "]");
  if (b.view) return *b.view;
  WeightView dense;  // an f32 tensor, read through the generic decode path
  dense.format = WeightFormat::F32;
  dense.rows = rows, dense.cols = cols, dense.ld = cols, dense.data = b.dense.raw();
  return dense;
}

const float* named_vector(const Napi::Object& tensors, const std::string& name, int64_t size, std::vector<Tensor>& keep) {
  Napi::Value v = tensors.Get(name);
  check_arg(!v.IsUndefined(), "Expected tensor " + name + " but the model has none");
  const Tensor& t = AddonTensor::unwrap(v, name.c_str())->tensor();
  check_arg(t.dtype == Dtype::F32 && t.numel() == size, "Expected " + name + " to be f32 with " + std::to_string(size) +
                                                            " elements but found " + dtype_name(t.dtype) + " " +
                                                            t.shape_string());
  keep.push_back(t);
  return t.data<float>();
}

int64_t check_tokens(const Tensor& tokens, int64_t vocab) {
  check_arg(tokens.dtype == Dtype::I32 && tokens.rank() == 1 && tokens.numel() >= 1,
            "Expected tokens to be a non-empty 1-D i32 tensor but received " + std::string(dtype_name(tokens.dtype)) +
                " " + tokens.shape_string());
  const int64_t n = tokens.numel();
  const int32_t* ids = tokens.data<int32_t>();
  for (int64_t t = 0; t < n; ++t)
    check_arg(ids[t] >= 0 && ids[t] < vocab, "Expected token ids in [0, " + std::to_string(vocab) +
                                                  ") but position " + std::to_string(t) + " holds " +
                                                  std::to_string(ids[t]));
  return n;
}

const Tensor& f32_matrix(const Napi::Value& value, const char* what, int64_t rows, int64_t cols) {
  const Tensor& t = AddonTensor::unwrap(value, what)->tensor();
  const bool ok = t.dtype == Dtype::F32 && t.rank() == 2 && (rows < 0 || t.shape[0] == rows) &&
                  (cols < 0 || t.shape[1] == cols);
  if (!ok) {
    std::string want = "[" + (rows < 0 ? std::string("*") : std::to_string(rows)) + ", " +
                       (cols < 0 ? std::string("*") : std::to_string(cols)) + "]";
    fail(ErrorCode::InvalidArgument, std::string("Expected ") + what + " to be an f32 tensor of shape " + want +
                                         " but received " + dtype_name(t.dtype) + " " + t.shape_string());
  }
  return t;
}

Napi::Value gemm_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* state = info.Env().GetInstanceData<AddonState>();
    const Tensor& a = f32_matrix(info[0], "a");
    const BOperand b = b_operand(info[1], "b");
    const Tensor& c = f32_matrix(info[2], "c");
    Napi::Object o = options_arg(info, 3);
    GemmArgs g;
    g.a.trans = option_bool(o, "transposeA", false);
    g.b.trans = option_bool(o, "transposeB", false);
    g.bf16 = option_bool(o, "bf16", false);
    g.alpha = static_cast<float>(option_number(o, "alpha", 1.0));
    g.beta = static_cast<float>(option_number(o, "beta", 0.0));
    const bool reference = option_bool(o, "reference", false);
    const int64_t repeat = option_int(o, "repeat", 1, 1, 1000000);
    const bool prepacked = option_bool(o, "prepacked", false), prepacked_a = option_bool(o, "prepackedA", false);
    g.m = g.a.trans ? a.shape[1] : a.shape[0];
    g.k = g.a.trans ? a.shape[0] : a.shape[1];
    const int64_t kb = g.b.trans ? b.cols : b.rows;
    g.n = g.b.trans ? b.rows : b.cols;
    check_arg(kb == g.k, "Expected inner dimensions to agree but op(a) is [" + std::to_string(g.m) + ", " +
                             std::to_string(g.k) + "] and op(b) is [" + std::to_string(kb) + ", " +
                             std::to_string(g.n) + "]");
    check_arg(c.shape[0] == g.m && c.shape[1] == g.n, "Expected c of shape [" + std::to_string(g.m) + ", " +
                                                          std::to_string(g.n) + "] but received " +
                                                          c.shape_string());
    check_arg(c.storage != a.storage && c.storage != b.dense.storage, "Expected c not to alias a or b");
    g.a.data = a.data<float>();
    g.a.ld = a.shape[1];
    g.b = b.operand(g.b.trans);
    g.c = c.data<float>();
    g.ldc = c.shape[1];
    // The worker owns copies of the operands (shared storage), so memory outlives any JS handle.
    auto pool = state->pool;
    const Isa isa = state->isa;
    return PromiseWorker::start(
        info.Env(),
        [g, pool, isa, reference, repeat, prepacked, prepacked_a, a, b, c]() mutable {
          // prepacked: B packed once up front (not timed by `repeat`), as a model keeps its weights.
          std::unique_ptr<GemmPanels> panels;
          WeightView dense;
          if (prepacked) {
            const WeightView* w = b.view.get();
            if (!w) {
              dense.format = WeightFormat::F32;
              dense.rows = b.rows, dense.cols = b.cols, dense.ld = b.cols, dense.data = b.dense.raw();
              w = &dense;
            }
            panels = cpu::gemm_pack_panels(*w, g.b.trans, isa, *pool);
            g.b.panels[g.b.trans ? 1 : 0] = panels.get();
          }
          std::unique_ptr<GemmPanels> a_panels;
          if (prepacked_a && !g.a.trans) {
            a_panels = cpu::gemm_pack_a_panels(g.a.data, g.a.ld, g.m, g.k, isa, *pool);
            g.a.panels[0] = a_panels.get();
          }
          for (int64_t r = 0; r < repeat; ++r) {
            if (reference)
              gemm_reference(g);
            else
              cpu::gemm(g, isa, *pool);
          }
        },
        nullptr, {info[0], info[1], info[2]});
  });
}

}  // namespace tk
