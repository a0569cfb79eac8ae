// The seam between model code and the machine that does its arithmetic.
// Why: the same layer wiring (model/) must run on the CPU today and on a GPU next, so model code
// never calls a kernel, touches an activation's memory or names a device. It asks its backend
// for buffers and runs ops through the backend's op table, passing the ExecContext of the call.
// The CPU backend (backend/cpu/) fills the table with today's kernels; a CUDA backend is one
// more folder filling the same table, plus its line in the registry (backend/registry.cc).
//
// What crosses the seam as host data: token ids, labels, position ids, attention segments and the
// RoPE table (a step's inputs, small; a device backend copies them in), scalar results (a loss,
// norm partials), and what goes back to JavaScript (logits, features: copy_to_host). The weights
// a WeightView points at, activations, the trainable state and the decode caches live where the
// backend keeps its buffers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "../ops/classifier_head.h"
#include "../ops/attention.h"
#include "../ops/cross_entropy.h"
#include "../ops/gemm.h"
#include "../ops/lora_linear.h"
#include "../ops/rope.h"
#include "../ops/weights.h"
#include "../dist/comm.h"
#include "../optim/adamw.h"
#include "exec_context.h"

namespace tk {

// The ops model code runs. One entry per op of ops/ (each header there says the math and holds
// the argument structs); pointers are device memory of the backend unless a comment says host.
struct OpTable {
  // ops/gemm.h. A B operand with `weights` set is a frozen weight (kept prepared with keep_weights).
  void (*gemm)(const ExecContext&, const GemmArgs&);
  // An input [m, k] that several products read (q, k and v of a layer), prepared once for them;
  // null when the backend has nothing to prepare (then each product takes x as it is).
  std::unique_ptr<GemmPanels> (*prepare_input)(const ExecContext&, const float* x, int64_t m, int64_t k);
  // ops/lora_linear.h
  void (*lora_linear_forward)(const ExecContext&, const LoraLinearArgs&, float* y, float* t);
  void (*lora_linear_backward)(const ExecContext&, const LoraLinearArgs&, const float* dy, const float* t, float* dx,
                               float* da, float* db);
  // ops/attention.h; segments are host data. The cached form attends n new queries at `offset`
  // to offset + n keys and values. lse [rows, q_heads] (may be null where no backward follows):
  // what the forward keeps for the backward, which gets the same buffer and the forward's `out`
  // back; a backend whose backward recomputes its own row statistics (CUDA's) leaves it unwritten.
  void (*attention_forward)(const ExecContext&, const float* q, const float* k, const float* v,
                            const AttentionSegments& segments, int64_t q_heads, int64_t kv_heads, int64_t head_dim,
                            float* out, float* lse, bool bf16, AttentionScores scores);
  void (*attention_forward_cached)(const ExecContext&, const float* q, const float* k, const float* v, int64_t n,
                                   int64_t offset, int64_t q_heads, int64_t kv_heads, int64_t head_dim, float* out,
                                   bool bf16, AttentionScores scores);
  void (*attention_backward)(const ExecContext&, const float* q, const float* k, const float* v, const float* out,
                             const float* lse, const float* dout,
                             const AttentionSegments& segments, int64_t q_heads, int64_t kv_heads, int64_t head_dim,
                             float* dq, float* dk, float* dv, bool bf16, AttentionScores scores);
  // ops/rmsnorm.h
  void (*rmsnorm_forward)(const ExecContext&, const float* x, const float* w, int64_t rows, int64_t dim, float eps,
                          float* y);
  void (*rmsnorm_backward)(const ExecContext&, const float* x, const float* w, const float* dy, int64_t rows,
                           int64_t dim, float eps, float* dx, float* dw, const float* residual);
  // ops/layernorm.h
  void (*layernorm_forward)(const ExecContext&, const float* x, const float* w, const float* b, int64_t rows,
                            int64_t dim, float eps, float* y);
  void (*layernorm_backward)(const ExecContext&, const float* x, const float* w, const float* dy, int64_t rows,
                             int64_t dim, float eps, float* dx, float* dw, float* db);
  // ops/rope.h; the table is host data (the backend may keep its own copy).
  void (*rope_forward)(const ExecContext&, float* x, int64_t heads, const RopeTable& table);
  void (*rope_backward)(const ExecContext&, float* dy, int64_t heads, const RopeTable& table);
  // ops/swiglu.h, ops/gelu.h
  void (*swiglu_forward)(const ExecContext&, const float* g, const float* u, int64_t n, float* a);
  void (*swiglu_backward)(const ExecContext&, const float* g, const float* u, const float* da, int64_t n, float* dg,
                          float* du);
  void (*gelu_forward)(const ExecContext&, const float* x, int64_t n, float* y);
  void (*gelu_backward)(const ExecContext&, const float* x, const float* dy, int64_t n, float* dx);
  // GeGLU (Gemma's MLP gate, ops/gelu.h): a = gelu_tanh(g)·u (a may alias g); dg, du.
  void (*geglu_forward)(const ExecContext&, const float* g, const float* u, int64_t n, float* a);
  void (*geglu_backward)(const ExecContext&, const float* g, const float* u, const float* da, int64_t n, float* dg,
                         float* du);
  // ops/cross_entropy.h; labels are host data, the result comes back to the host.
  CrossEntropyResult (*cross_entropy)(const ExecContext&, float* logits, const int32_t* labels, int64_t rows,
                                      int64_t vocab, bool grad);
  // ops/embedding.h: out[t] (+)= table row ids[t]; the table in any weight format (decoding a
  // weight is this op); ids are host data.
  void (*embedding_forward)(const ExecContext&, const WeightView& table, const int32_t* ids, int64_t n, float* out,
                            bool accumulate);
  // dtable[ids[t]] += dx[t], rows of `dim`.
  void (*embedding_backward)(const ExecContext&, float* dtable, const int32_t* ids, const float* dx, int64_t n,
                             int64_t dim);
  // ops/elementwise.h: y[r] += bias on every row; db += column sums of dy; a += b; a *= s; a strided copy
  // of a [rows, cols] block (dst row stride ldd, src lds).
  void (*bias_forward)(const ExecContext&, float* y, const float* bias, int64_t rows, int64_t dim);
  void (*bias_backward)(const ExecContext&, float* db, const float* dy, int64_t rows, int64_t dim);
  void (*add)(const ExecContext&, float* a, const float* b, int64_t n);
  void (*scale)(const ExecContext&, float* a, float s, int64_t n);  // a *= s
  void (*softcap)(const ExecContext&, float* a, float cap, int64_t n);  // a = cap·tanh(a / cap)
  // dy *= 1 − (y / cap)², y the capped values
  void (*softcap_backward)(const ExecContext&, const float* y, float* dy, float cap, int64_t n);
  void (*copy_block)(const ExecContext&, float* dst, int64_t ldd, const float* src, int64_t lds, int64_t rows,
                     int64_t cols);
  // ops/classifier_head.h (labels, lengths and the logits written are host data; the head's
  // parameters and gradients are the trainable state's).
  CrossEntropyResult (*classifier_head_step)(const ExecContext&, const ClassifierHead& head, const float* params,
                                             float* grads, const float* hidden, int64_t batch, int64_t seq,
                                             const int32_t* lengths, const int32_t* labels, float* logits,
                                             float* dhidden);
  void (*classifier_pool)(const ExecContext&, bool mean_pool, const float* hidden, int64_t batch, int64_t seq,
                          int64_t dim, const int32_t* lengths, float* out);
  // optim/adamw.h (the partials are host data).
  void (*adamw_step)(const ExecContext&, float* param, const float* grad, float* m, float* v, int64_t n,
                     const AdamWConfig& cfg, int64_t t, float grad_scale);
  void (*sum_squares_chunks)(const ExecContext&, const float* g, int64_t n, int64_t chunk, double* partials);
};

// A backend: its buffers, its op table, and state it keeps for a model's lifetime (caches of
// prepared weights). One instance per loaded model (backend/registry.h makes them).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;  // "cpu", "cuda"
  virtual const OpTable& ops() const = 0;
  // Buffers: `bytes` of device memory (aligned for any element type), freed with the same size.
  // A failed allocation throws (std::bad_alloc, or a tk::Error OutOfMemory), which the addon
  // reports as ERR_TUNEKIT_OUT_OF_MEMORY.
  virtual void* alloc(size_t bytes) = 0;
  virtual void free(void* p, size_t bytes) noexcept = 0;
  virtual void fill_zero(void* p, size_t bytes) = 0;
  // Zeroes p[0..bytes) and may give its memory back until it is written again (ZeRO-2 drops the
  // gradient of the shards other ranks own this way).
  virtual void discard(void* p, size_t bytes) { fill_zero(p, bytes); }
  virtual void copy_to_device(void* dst, const void* src_host, size_t bytes) = 0;
  virtual void copy_to_host(void* dst_host, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // device to device
  // Waits for every op issued so far (a no-op where ops run synchronously).
  virtual void synchronize() = 0;
  // A step's buffers are all freed: let go of what the next step will not reuse.
  virtual void end_step() {}

  // The model's frozen weights, as the loader left them in host memory, made readable by this
  // backend's ops: the CPU reads them where they are; a device backend copies each once (the
  // same host memory placed twice gives the same copy, so a tied head stays the embedding) and
  // keeps the copy for its lifetime. check_room throws OutOfMemory, naming `what`, when `bytes`
  // more would not fit, before anything is placed.
  virtual WeightView place(const WeightView& host) { return host; }
  virtual const float* place(const float* host, int64_t n) { return host; }
  virtual void check_room(size_t bytes, const char* what) {}
  // The collectives over this backend's buffers for a data-parallel run whose group is `host`
  // (the MPI engine, over host memory): `host` itself where the host can read the buffers; a device
  // backend's own engine (NCCL on GPUs), set up over `host` on first use and kept.
  virtual Comm& collectives(Comm& host) { return host; }

  ExecContext context(Isa isa, ThreadPool* pool) {
    ExecContext x;
    x.backend = this, x.op = &ops(), x.isa = isa, x.pool = pool;
    return x;
  }
};

// fp32 values on a backend, freed with it: activations, gradients, caches. Move-only; a
// default-constructed one is empty.
class Buffer {
 public:
  Buffer() = default;
  // n values, zeroed when `zero` (else unset: every activation is written before it is read).
  Buffer(const ExecContext& x, int64_t n, bool zero = false);
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    Buffer(std::move(o)).swap(*this);
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { reset(); }

  float* data() { return p_; }
  const float* data() const { return p_; }
  int64_t size() const { return n_; }
  void reset() noexcept;
  void swap(Buffer& o) noexcept {
    std::swap(b_, o.b_), std::swap(p_, o.p_), std::swap(n_, o.n_);
  }

 private:
  Backend* b_ = nullptr;
  float* p_ = nullptr;
  int64_t n_ = 0;
};

// A copy of `src` in a new buffer of the same backend.
Buffer copy_of(const ExecContext& x, const Buffer& src);

// A growable fp32 vector on a backend: the flat trainable state (parameters, gradients, AdamW
// moments). Growing keeps the values and zeroes the new ones; a copy is a deep copy on the same
// backend. Host code reads and writes it through read/write, never through data(). Capacity
// grows geometrically, as std::vector's: a layout appends hundreds of tensors one by one.
class FlatVector {
 public:
  explicit FlatVector(Backend* backend = nullptr) : b_(backend) {}
  FlatVector(const FlatVector& o);
  FlatVector& operator=(const FlatVector& o);
  FlatVector(FlatVector&& o) noexcept { swap(o); }
  FlatVector& operator=(FlatVector&& o) noexcept {
    FlatVector(std::move(o)).swap(*this);
    return *this;
  }
  ~FlatVector();

  Backend* backend() const { return b_; }
  float* data() { return p_; }
  const float* data() const { return p_; }
  int64_t size() const { return n_; }
  void resize(int64_t n);
  // Room for n values without changing size(); what lies past size() reads as zero. The sharded
  // optimizer gathers a vector padded to a multiple of the world size into it.
  void reserve(int64_t n);
  void fill_zero();
  // values [offset, offset + n) to or from host memory.
  void read(int64_t offset, int64_t n, float* host) const;
  void write(int64_t offset, int64_t n, const float* host);
  void swap(FlatVector& o) noexcept {
    std::swap(b_, o.b_), std::swap(p_, o.p_), std::swap(n_, o.n_), std::swap(cap_, o.cap_);
  }

 private:
  Backend* b_ = nullptr;
  float* p_ = nullptr;
  int64_t n_ = 0, cap_ = 0;
};

}  // namespace tk
