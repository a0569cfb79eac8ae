// The CUDA backend's ops, one file each (their forward and backward together), with the
// signatures of the op table (backend/backend.h), so the table in cuda_backend.cu is a list of
// names. Each file's top comment says how its kernels split the work.
#pragma once
#include "../backend.h"

namespace tk {
namespace cuda {

// gemm.cu
void gemm(const ExecContext& x, const GemmArgs& a);
std::unique_ptr<GemmPanels> prepare_input(const ExecContext& x, const float* a, int64_t m, int64_t k);
// lora_linear.cu
void lora_linear_forward(const ExecContext& x, const LoraLinearArgs& a, float* y, float* t);
void lora_linear_backward(const ExecContext& x, const LoraLinearArgs& a, const float* dy, const float* t, float* dx,
                          float* da, float* db);
// attention.cu
void attention_forward(const ExecContext& x, const float* q, const float* k, const float* v, const AttentionSegments& s,
                       int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* out, float* lse, bool bf16,
                       AttentionScores scores);
void attention_forward_cached(const ExecContext& x, const float* q, const float* k, const float* v, int64_t n,
                              int64_t offset, int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* out, bool bf16,
                              AttentionScores scores);
void attention_backward(const ExecContext& x, const float* q, const float* k, const float* v, const float* out,
                        const float* lse, const float* dout,
                        const AttentionSegments& s, int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* dq,
                        float* dk, float* dv, bool bf16, AttentionScores scores);
// rmsnorm.cu
void rmsnorm_forward(const ExecContext& x, const float* in, const float* w, int64_t rows, int64_t dim, float eps, float* y);
void rmsnorm_backward(const ExecContext& x, const float* in, const float* w, const float* dy, int64_t rows, int64_t dim,
                      float eps, float* dx, float* dw, const float* residual);
// layernorm.cu
void layernorm_forward(const ExecContext& x, const float* in, const float* w, const float* b, int64_t rows, int64_t dim,
                       float eps, float* y);
void layernorm_backward(const ExecContext& x, const float* in, const float* w, const float* dy, int64_t rows, int64_t dim,
                        float eps, float* dx, float* dw, float* db);
// rope.cu
void rope_forward(const ExecContext& x, float* v, int64_t heads, const RopeTable& table);
void rope_backward(const ExecContext& x, float* dy, int64_t heads, const RopeTable& table);
// swiglu.cu, gelu.cu
void swiglu_forward(const ExecContext& x, const float* g, const float* u, int64_t n, float* a);
void swiglu_backward(const ExecContext& x, const float* g, const float* u, const float* da, int64_t n, float* dg, float* du);
void gelu_forward(const ExecContext& x, const float* in, int64_t n, float* y);
void gelu_backward(const ExecContext& x, const float* in, const float* dy, int64_t n, float* dx);
void geglu_forward(const ExecContext& x, const float* g, const float* u, int64_t n, float* a);
void geglu_backward(const ExecContext& x, const float* g, const float* u, const float* da, int64_t n, float* dg, float* du);
// cross_entropy.cu
CrossEntropyResult cross_entropy(const ExecContext& x, float* logits, const int32_t* labels, int64_t rows, int64_t vocab,
                                 bool grad);
// embedding.cu
void embedding_forward(const ExecContext& x, const WeightView& table, const int32_t* ids, int64_t n, float* out,
                       bool accumulate);
void embedding_backward(const ExecContext& x, float* dtable, const int32_t* ids, const float* dx, int64_t n, int64_t dim);
// elementwise.cu
void bias_forward(const ExecContext& x, float* y, const float* bias, int64_t rows, int64_t dim);
void bias_backward(const ExecContext& x, float* db, const float* dy, int64_t rows, int64_t dim);
void add(const ExecContext& x, float* a, const float* b, int64_t n);
void scale(const ExecContext& x, float* a, float s, int64_t n);
void softcap(const ExecContext& x, float* a, float cap, int64_t n);
void softcap_backward(const ExecContext& x, const float* y, float* dy, float cap, int64_t n);
void copy_block(const ExecContext& x, float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows, int64_t cols);
// classifier_head.cu
CrossEntropyResult classifier_head_step(const ExecContext& x, const ClassifierHead& head, const float* params, float* grads,
                                        const float* hidden, int64_t batch, int64_t seq, const int32_t* lengths,
                                        const int32_t* labels, float* logits, float* dhidden);
void classifier_pool(const ExecContext& x, bool mean_pool, const float* hidden, int64_t batch, int64_t seq, int64_t dim,
                     const int32_t* lengths, float* out);
// adamw.cu
void adamw_step(const ExecContext& x, float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& c,
                int64_t t, float grad_scale);
void sum_squares_chunks(const ExecContext& x, const float* g, int64_t n, int64_t chunk, double* partials);

// Shared by gemm.cu and embedding.cu (weight_decode.cu): the whole of w, decoded row-major
// [rows, cols] into out (fp32, or bf16 when `bf16`).
void decode_weights(const ExecContext& x, const WeightView& w, void* out, bool bf16);
// fp32 [rows, cols] (row stride ld) -> bf16, packed [rows, cols] (gemm.cu).
void round_to_bf16(const ExecContext& x, const float* src, int64_t rows, int64_t cols, int64_t ld, void* out);

}  // namespace cuda
}  // namespace tk
