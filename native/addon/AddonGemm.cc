// gemm(a, b, c, options) -> Promise<void>: C = alpha * op(A) * op(B) + beta * C on a worker thread.
#include <napi.h>

#include "../ops/gemm.h"
#include "AddonTensor.h"
#include "PromiseWorker.h"
#include "addon_state.h"
#include "options.h"

namespace tk {

Napi::Value gemm_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* state = info.Env().GetInstanceData<AddonState>();
    const Tensor& a = AddonTensor::unwrap(info[0], "a")->tensor();
    const Tensor& b = AddonTensor::unwrap(info[1], "b")->tensor();
    const Tensor& c = AddonTensor::unwrap(info[2], "c")->tensor();
    Napi::Object o = options_arg(info, 3);
    for (const Tensor* t : {&a, &b, &c})
      check_arg(t->dtype == Dtype::F32 && t->rank() == 2,
                "Expected 2-D f32 tensors for gemm but received " + std::string(dtype_name(t->dtype)) + " " +
                    t->shape_string());
    GemmArgs g;
    g.a.trans = option_bool(o, "transposeA", false);
    g.b.trans = option_bool(o, "transposeB", false);
    g.bf16 = option_bool(o, "bf16", false);
    g.alpha = static_cast<float>(option_number(o, "alpha", 1.0));
    g.beta = static_cast<float>(option_number(o, "beta", 0.0));
    const bool reference = option_bool(o, "reference", false);
    const int64_t repeat = option_int(o, "repeat", 1, 1, 1000000);
    g.m = g.a.trans ? a.shape[1] : a.shape[0];
    g.k = g.a.trans ? a.shape[0] : a.shape[1];
    const int64_t kb = g.b.trans ? b.shape[1] : b.shape[0];
    g.n = g.b.trans ? b.shape[0] : b.shape[1];
    check_arg(kb == g.k, "Expected inner dimensions to agree but op(a) is [" + std::to_string(g.m) + ", " +
                             std::to_string(g.k) + "] and op(b) is [" + std::to_string(kb) + ", " +
                             std::to_string(g.n) + "]");
    check_arg(c.shape[0] == g.m && c.shape[1] == g.n, "Expected c of shape [" + std::to_string(g.m) + ", " +
                                                          std::to_string(g.n) + "] but received " +
                                                          c.shape_string());
    check_arg(c.storage != a.storage && c.storage != b.storage, "Expected c not to alias a or b");
    g.a.data = a.data<float>();
    g.a.ld = a.shape[1];
    g.b.data = b.data<float>();
    g.b.ld = b.shape[1];
    g.c = c.data<float>();
    g.ldc = c.shape[1];
    // The worker owns copies of the tensors (shared storage), so the memory outlives any JS handle.
    auto pool = state->pool;
    const Isa isa = state->isa;
    return PromiseWorker::start(
        info.Env(),
        [g, pool, isa, reference, repeat, a, b, c] {
          for (int64_t r = 0; r < repeat; ++r) {
            if (reference)
              gemm_reference(g);
            else
              gemm(g, isa, *pool);
          }
        },
        nullptr, {info[0], info[1], info[2]});
  });
}

}  // namespace tk
