// The CPU backend's kernels: what its op table (backend/cpu/cpu_backend.cc) calls, and what the
// kernel tests and benchmarks (addon/AddonGemm.cc, AddonOps.cc) drive directly. Each takes the
// ISA variant and the pool of its call; each op's math and arguments are documented in ops/.
// Model code never includes this: it runs ops through the ExecContext's table.
#pragma once
#include <cstdint>
#include <memory>

#include "cpu_features.h"
#include "thread_pool.h"
#include "../../ops/attention.h"
#include "../../ops/classifier_head.h"
#include "../../ops/cross_entropy.h"
#include "../../ops/gemm.h"
#include "../../ops/lora_linear.h"
#include "../../ops/rope.h"
#include "../../ops/weights.h"
#include "../../optim/adamw.h"

namespace tk {
namespace cpu {

// out[i] = W[row, col + i] for i < count, any format (weight_decode.cc).
void decode_weights(const WeightView& w, int64_t row, int64_t col, int64_t count, float* out);
// The most decode_weights' vector decoders may use (default: the CPU's best). The addon sets it to
// the kernels' ISA (TUNEKIT_ISA, setRuntimeOptions), so a forced ISA runs, and tests, its own
// decoders on any CPU. Process-wide, last setting wins: every decoder gives the same bits, so only
// the speed depends on it.
void set_decode_isa(Isa isa);

// gemm.cc, gemm_packing.cc
void gemm(const GemmArgs& args, Isa isa, ThreadPool& pool);
// Packs op(W) (Wᵀ when trans) for the bf16 kernel `isa` uses; null when that kernel does not
// read bf16 pairs (the scalar and the AVX-512F kernels), when pre-packing would not be used anyway.
std::unique_ptr<GemmPanels> gemm_pack_panels(const WeightView& w, bool trans, Isa isa, ThreadPool& pool);
// The same for a dense op(B) (k x n; B row-major with row stride ld, stored n x k when trans), on
// the calling thread: attention packs a head's keys and values once for all its query blocks.
std::unique_ptr<GemmPanels> gemm_pack_dense_panels(const float* b, int64_t ld, bool trans, int64_t k, int64_t n, Isa isa);
// An A operand (m x k, row-major with row stride ld, not transposed) packed once as the bf16
// kernel's MR-row panels, for several products that share it (q, k and v of one layer): set as
// A's panels[0]. Used by bf16 products whose B is pre-packed too and whose K fits one block;
// null when the kernel takes no bf16 pairs.
std::unique_ptr<GemmPanels> gemm_pack_a_panels(const float* a, int64_t ld, int64_t m, int64_t k, Isa isa, ThreadPool& pool);

// lora_linear.cc
void lora_linear_forward(const LoraLinearArgs& args, float* y, float* t, Isa isa, ThreadPool& pool);
void lora_linear_backward(const LoraLinearArgs& args, const float* dy, const float* t, float* dx, float* da, float* db,
                          Isa isa, ThreadPool& pool);

// attention.cc: the cached form (offset > 0 keys precede the n queries) and the packed form.
void attention_causal_forward(const float* q, const float* k, const float* v, int64_t n, int64_t offset,
                              int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* out, Isa isa, ThreadPool& pool,
                              bool bf16 = false, AttentionScores scores = {});
// The packed form's forward writes each row's log Σ exp of its scores to lse [rows, q_heads] (if
// not null); the backward reads them and the forward's out.
void attention_causal_forward(const float* q, const float* k, const float* v, const AttentionSegments& segments,
                              int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* out, float* lse, Isa isa,
                              ThreadPool& pool, bool bf16 = false, AttentionScores scores = {});
void attention_causal_backward(const float* q, const float* k, const float* v, const float* out, const float* lse,
                               const float* dout,
                               const AttentionSegments& segments, int64_t q_heads, int64_t kv_heads, int64_t head_dim,
                               float* dq, float* dk, float* dv, Isa isa, ThreadPool& pool, bool bf16 = false,
                               AttentionScores scores = {});

// rmsnorm.cc, layernorm.cc
// (vectorized for the ISA; the same bits on every one)
void rmsnorm_forward(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* y, ThreadPool& pool,
                     Isa isa);
void rmsnorm_backward(const float* x, const float* w, const float* dy, int64_t rows, int64_t dim, float eps, float* dx,
                      float* dw, ThreadPool& pool, Isa isa, const float* residual = nullptr);
void layernorm_forward(const float* x, const float* w, const float* b, int64_t rows, int64_t dim, float eps, float* y,
                       ThreadPool& pool);
void layernorm_backward(const float* x, const float* w, const float* dy, int64_t rows, int64_t dim, float eps, float* dx,
                        float* dw, float* db, ThreadPool& pool);

// rope.cc: rows split across the pool (each token's heads are independent).
void rope_forward(float* x, int64_t heads, const RopeTable& table, ThreadPool& pool);
void rope_backward(float* dy, int64_t heads, const RopeTable& table, ThreadPool& pool);

// swiglu.cc, gelu.cc: isa picks the exp kernel (backend/cpu/vexp.h).
void swiglu_forward(const float* g, const float* u, int64_t n, float* a, ThreadPool& pool, Isa isa);
void swiglu_backward(const float* g, const float* u, const float* da, int64_t n, float* dg, float* du, ThreadPool& pool,
                     Isa isa);
void gelu_forward(const float* x, int64_t n, float* y, ThreadPool& pool, Isa isa);
void gelu_backward(const float* x, const float* dy, int64_t n, float* dx, ThreadPool& pool, Isa isa);
void geglu_forward(const float* g, const float* u, int64_t n, float* a, ThreadPool& pool, Isa isa);
void geglu_backward(const float* g, const float* u, const float* da, int64_t n, float* dg, float* du, ThreadPool& pool,
                    Isa isa);

// cross_entropy.cc: grad_scale multiplies the gradient (not the loss).
CrossEntropyResult cross_entropy(float* logits, const int32_t* labels, int64_t rows, int64_t vocab, bool grad,
                                 float grad_scale, ThreadPool& pool, Isa isa);

// classifier_head.cc
CrossEntropyResult classifier_head_step(const ClassifierHead& head, const float* params, float* grads, const float* hidden,
                                        int64_t batch, int64_t seq, const int32_t* lengths, const int32_t* labels,
                                        float* logits_out, float* dhidden, ThreadPool& pool);
void classifier_pool(bool mean_pool, const float* hidden, int64_t batch, int64_t seq, int64_t dim, const int32_t* lengths,
                     float* out);

// embedding.cc
void embedding_forward(const WeightView& table, const int32_t* ids, int64_t n, float* out, bool accumulate,
                       ThreadPool& pool);
void embedding_backward(float* dtable, const int32_t* ids, const float* dx, int64_t n, int64_t dim, ThreadPool& pool);

// elementwise.cc
void bias_forward(float* y, const float* bias, int64_t rows, int64_t dim, ThreadPool& pool);
void bias_backward(float* db, const float* dy, int64_t rows, int64_t dim, ThreadPool& pool);
void add(float* a, const float* b, int64_t n, ThreadPool& pool);
void scale(float* a, float s, int64_t n, ThreadPool& pool);
void softcap(float* a, float cap, int64_t n, Isa isa, ThreadPool& pool);
void softcap_backward(const float* y, float* dy, float cap, int64_t n, ThreadPool& pool);
void copy_block(float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows, int64_t cols, ThreadPool& pool);

// adamw.cc (pool may be null: the calling thread alone)
void adamw_step(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWConfig& cfg, int64_t t,
                ThreadPool* pool, float grad_scale);
void sum_squares_chunks(const float* g, int64_t n, int64_t chunk, double* partials, ThreadPool* pool);

}  // namespace cpu
}  // namespace tk
