#include "cpu_backend.h"

#include <cstdint>
#include <cstring>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#ifdef __linux__
#include <sys/mman.h>
#endif

#include "block_cache.h"
#include "kernels.h"
#include "weight_panels.h"

namespace tk {
namespace {

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  const OpTable& ops() const override;
  void* alloc(size_t bytes) override { return BlockCache::instance().get(bytes); }
  void free(void* p, size_t bytes) noexcept override { BlockCache::instance().put(p, bytes); }
  void fill_zero(void* p, size_t bytes) override { std::memset(p, 0, bytes); }
  // Whole pages inside the range go back to the kernel (Linux's MADV_DONTNEED: anonymous private
  // memory then reads as zeros and costs nothing until written; other systems do not promise the
  // zeros, so there it is a memset); the partial pages at the ends are set.
  void discard(void* p, size_t bytes) override {
#ifndef __linux__
    std::memset(p, 0, bytes);
#else
    const uintptr_t page = 4096, a = reinterpret_cast<uintptr_t>(p), b = a + bytes;
    const uintptr_t first = (a + page - 1) & ~(page - 1), last = b & ~(page - 1);
    if (last <= first + page) return std::memset(p, 0, bytes), void();
    std::memset(p, 0, first - a);
    std::memset(reinterpret_cast<void*>(last), 0, b - last);
    if (madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) != 0) std::memset(reinterpret_cast<void*>(first), 0, last - first);
#endif
  }
  void copy_to_device(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy_to_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void synchronize() override {}
  // The large buffers stay in the block cache for the next step; the small ones go back from this
  // worker thread's malloc arena.
  void end_step() override {
    BlockCache::instance().end_step();
#ifdef __GLIBC__
    malloc_trim(0);
#endif
  }

  cpu::WeightPanelCache panels;
};

ThreadPool& pool_of(const ExecContext& x) { return *x.pool; }

// A frozen weight operand with its kept panels in the orientation `trans` (packed on first use).
void keep(const ExecContext& x, GemmOperand& o, bool trans) {
  if (!x.keep_weights || !o.weights || o.panels[trans ? 1 : 0]) return;
  o.panels[trans ? 1 : 0] = static_cast<CpuBackend*>(x.backend)->panels.get(*o.weights, trans, x.isa, pool_of(x));
}

void gemm(const ExecContext& x, const GemmArgs& a) {
  if (!x.keep_weights || !a.bf16 || !a.b.weights) return cpu::gemm(a, x.isa, pool_of(x));
  GemmArgs g = a;
  keep(x, g.b, g.b.trans);
  cpu::gemm(g, x.isa, pool_of(x));
}

std::unique_ptr<GemmPanels> prepare_input(const ExecContext& x, const float* a, int64_t m, int64_t k) {
  // Only worth it where the products' B operands are kept packed too (see gemm_pack_a_panels).
  if (!x.keep_weights) return nullptr;
  return cpu::gemm_pack_a_panels(a, k, m, k, x.isa, pool_of(x));
}

// The LoRA linear's frozen product reads op(W) = Wᵀ forward (W as stored when w_in_out) and the
// other orientation backward.
void lora_linear_forward(const ExecContext& x, const LoraLinearArgs& a, float* y, float* t) {
  LoraLinearArgs g = a;
  if (g.bf16) keep(x, g.w, !g.w_in_out);
  cpu::lora_linear_forward(g, y, t, x.isa, pool_of(x));
}

void lora_linear_backward(const ExecContext& x, const LoraLinearArgs& a, const float* dy, const float* t, float* dx,
                          float* da, float* db) {
  LoraLinearArgs g = a;
  if (g.bf16) keep(x, g.w, g.w_in_out);
  cpu::lora_linear_backward(g, dy, t, dx, da, db, x.isa, pool_of(x));
}

const OpTable kCpuOps = {
    gemm,
    prepare_input,
    lora_linear_forward,
    lora_linear_backward,
    [](const ExecContext& x, const float* q, const float* k, const float* v, const AttentionSegments& s, int64_t hq,
       int64_t hkv, int64_t hd, float* out, float* lse, bool bf16, AttentionScores scores) {
      cpu::attention_causal_forward(q, k, v, s, hq, hkv, hd, out, lse, x.isa, pool_of(x), bf16, scores);
    },
    [](const ExecContext& x, const float* q, const float* k, const float* v, int64_t n, int64_t offset, int64_t hq,
       int64_t hkv, int64_t hd, float* out, bool bf16, AttentionScores scores) {
      cpu::attention_causal_forward(q, k, v, n, offset, hq, hkv, hd, out, x.isa, pool_of(x), bf16, scores);
    },
    [](const ExecContext& x, const float* q, const float* k, const float* v, const float* out, const float* lse,
       const float* dout, const AttentionSegments& s, int64_t hq, int64_t hkv, int64_t hd, float* dq, float* dk, float* dv,
       bool bf16, AttentionScores scores) {
      cpu::attention_causal_backward(q, k, v, out, lse, dout, s, hq, hkv, hd, dq, dk, dv, x.isa, pool_of(x), bf16, scores);
    },
    [](const ExecContext& x, const float* in, const float* w, int64_t rows, int64_t dim, float eps, float* y) {
      cpu::rmsnorm_forward(in, w, rows, dim, eps, y, pool_of(x), x.isa);
    },
    [](const ExecContext& x, const float* in, const float* w, const float* dy, int64_t rows, int64_t dim, float eps,
       float* dx, float* dw, const float* residual) {
      cpu::rmsnorm_backward(in, w, dy, rows, dim, eps, dx, dw, pool_of(x), x.isa, residual);
    },
    [](const ExecContext& x, const float* in, const float* w, const float* b, int64_t rows, int64_t dim, float eps,
       float* y) { cpu::layernorm_forward(in, w, b, rows, dim, eps, y, pool_of(x)); },
    [](const ExecContext& x, const float* in, const float* w, const float* dy, int64_t rows, int64_t dim, float eps,
       float* dx, float* dw, float* db) { cpu::layernorm_backward(in, w, dy, rows, dim, eps, dx, dw, db, pool_of(x)); },
    [](const ExecContext& x, float* v, int64_t heads, const RopeTable& t) { cpu::rope_forward(v, heads, t, pool_of(x)); },
    [](const ExecContext& x, float* dy, int64_t heads, const RopeTable& t) { cpu::rope_backward(dy, heads, t, pool_of(x)); },
    [](const ExecContext& x, const float* g, const float* u, int64_t n, float* a) {
      cpu::swiglu_forward(g, u, n, a, pool_of(x), x.isa);
    },
    [](const ExecContext& x, const float* g, const float* u, const float* da, int64_t n, float* dg, float* du) {
      cpu::swiglu_backward(g, u, da, n, dg, du, pool_of(x), x.isa);
    },
    [](const ExecContext& x, const float* in, int64_t n, float* y) { cpu::gelu_forward(in, n, y, pool_of(x), x.isa); },
    [](const ExecContext& x, const float* in, const float* dy, int64_t n, float* dx) {
      cpu::gelu_backward(in, dy, n, dx, pool_of(x), x.isa);
    },
    [](const ExecContext& x, const float* g, const float* u, int64_t n, float* a) {
      cpu::geglu_forward(g, u, n, a, pool_of(x), x.isa);
    },
    [](const ExecContext& x, const float* g, const float* u, const float* da, int64_t n, float* dg, float* du) {
      cpu::geglu_backward(g, u, da, n, dg, du, pool_of(x), x.isa);
    },
    [](const ExecContext& x, float* logits, const int32_t* labels, int64_t rows, int64_t vocab, bool grad) {
      return cpu::cross_entropy(logits, labels, rows, vocab, grad, 1.0f, pool_of(x), x.isa);
    },
    [](const ExecContext& x, const WeightView& table, const int32_t* ids, int64_t n, float* out, bool accumulate) {
      cpu::embedding_forward(table, ids, n, out, accumulate, pool_of(x));
    },
    [](const ExecContext& x, float* dtable, const int32_t* ids, const float* dx, int64_t n, int64_t dim) {
      cpu::embedding_backward(dtable, ids, dx, n, dim, pool_of(x));
    },
    [](const ExecContext& x, float* y, const float* bias, int64_t rows, int64_t dim) {
      cpu::bias_forward(y, bias, rows, dim, pool_of(x));
    },
    [](const ExecContext& x, float* db, const float* dy, int64_t rows, int64_t dim) {
      cpu::bias_backward(db, dy, rows, dim, pool_of(x));
    },
    [](const ExecContext& x, float* a, const float* b, int64_t n) { cpu::add(a, b, n, pool_of(x)); },
    [](const ExecContext& x, float* a, float s, int64_t n) { cpu::scale(a, s, n, pool_of(x)); },
    [](const ExecContext& x, float* a, float cap, int64_t n) { cpu::softcap(a, cap, n, x.isa, pool_of(x)); },
    [](const ExecContext& x, const float* y, float* dy, float cap, int64_t n) {
      cpu::softcap_backward(y, dy, cap, n, pool_of(x));
    },
    [](const ExecContext& x, float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows, int64_t cols) {
      cpu::copy_block(dst, ldd, src, lds, rows, cols, pool_of(x));
    },
    [](const ExecContext& x, const ClassifierHead& h, const float* params, float* grads, const float* hidden,
       int64_t batch, int64_t seq, const int32_t* lengths, const int32_t* labels, float* logits, float* dhidden) {
      return cpu::classifier_head_step(h, params, grads, hidden, batch, seq, lengths, labels, logits, dhidden, pool_of(x));
    },
    [](const ExecContext&, bool mean_pool, const float* hidden, int64_t batch, int64_t seq, int64_t dim,
       const int32_t* lengths, float* out) { cpu::classifier_pool(mean_pool, hidden, batch, seq, dim, lengths, out); },
    [](const ExecContext& x, float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& c, int64_t t,
       float grad_scale) { cpu::adamw_step(p, g, m, v, n, c, t, x.pool, grad_scale); },
    [](const ExecContext& x, const float* g, int64_t n, int64_t chunk, double* partials) {
      cpu::sum_squares_chunks(g, n, chunk, partials, x.pool);
    },
};

const OpTable& CpuBackend::ops() const { return kCpuOps; }

}  // namespace

std::shared_ptr<Backend> make_cpu_backend() { return std::make_shared<CpuBackend>(); }

}  // namespace tk
