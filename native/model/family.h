// A loaded model of any family, as the one N-API model class (addon/AddonModel.cc) drives it.
// Why an interface: the binding, the trainable state (model/trainable.h) and the optimizer are
// written once; a family brings its layer wiring, its names (LoRA targets, tensor names) and its
// generation cache. A new family is one implementation of this plus its constructor from named
// weights (addon/model_weights.cc).
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../backend/backend.h"
#include "gpt2.h"
#include "llama.h"
#include "train_step.h"
#include "trainable.h"

namespace tk {

// The keys and values of one sequence being generated. Why growing storage: a session is opened
// for prompt + maxTokens, and allocating all of it at once cost 2.4 GB for a 20-token reply with
// maxTokens 50,000 on SmolLM2; the storage starts at kInitialCacheTokens and doubles as tokens
// arrive, up to the session's limit.
constexpr int64_t kInitialCacheTokens = 256;

struct DecodeCache {
  virtual ~DecodeCache() = default;
  // Most tokens the session may hold (the caller checks it before each decode).
  int64_t limit() const { return limit_; }
  virtual int64_t capacity() const = 0;  // tokens the storage holds now
  virtual int64_t length() const = 0;
  virtual void reset() = 0;
  // Room for n more tokens (length + n <= limit), growing the storage, contents kept.
  void make_room(int64_t n, const ExecContext& x) {
    if (length() + n > capacity()) grow(std::min(limit_, std::max(2 * capacity(), length() + n)), x);
  }

 protected:
  explicit DecodeCache(int64_t limit) : limit_(limit) {}
  virtual void grow(int64_t capacity, const ExecContext& x) = 0;

 private:
  int64_t limit_;
};

class ModelFamily {
 public:
  explicit ModelFamily(std::shared_ptr<Backend> backend) : backend_(std::move(backend)) {}
  virtual ~ModelFamily() = default;
  virtual const char* name() const = 0;  // "llama", "gpt2"
  virtual int64_t vocab() const = 0;
  virtual int64_t layers() const = 0;
  virtual int64_t dim() const = 0;
  // Most tokens a sequence may hold (learned position embeddings); 0: no limit of the model's own.
  virtual int64_t max_positions() const = 0;

  // The module names addLora's targets accept, and the adapters on them: `t` must be empty;
  // `layers` says which layers get adapters. Throws InvalidArgument naming an unknown target.
  virtual std::vector<std::string> lora_targets() const = 0;
  virtual void add_lora(Trainable& t, const LoraSpec& spec, const std::vector<std::string>& targets,
                        const std::vector<bool>& layers) const = 0;
  // Every weight as a trainable fp32 tensor of `t` (which must be empty), under the family's names.
  virtual void enable_full_training(Trainable& t, const ExecContext& x) const = 0;

  // Forward (+ backward) of sequences [batch, seq]; token ids, labels and positions are checked
  // by the caller.
  virtual StepResult step(Trainable& t, const int32_t* tokens, const int32_t* labels, int64_t batch, int64_t seq,
                          const StepOptions& o, const ExecContext& x) const = 0;
  // The LM's logits [n, vocab] of one sequence (adapters or trained weights of t applied; t may
  // be null; a classifier head is not used).
  virtual void logits(const Trainable* t, const int32_t* tokens, int64_t n, float* out, const ExecContext& x) const = 0;
  // A cache for at most `limit` tokens.
  virtual std::unique_ptr<DecodeCache> new_cache(int64_t limit, const ExecContext& x) const = 0;
  // Appends tokens [n] to the cache (length + n <= limit, checked by the caller) and writes the
  // last one's logits [vocab].
  virtual void decode(const Trainable* t, DecodeCache& cache, const int32_t* tokens, int64_t n, float* logits,
                      const ExecContext& x) const = 0;

  // The backend the model runs on (backend/registry.h), with what it keeps for the model (the
  // frozen weights' prepared copies); a call's context is context(isa, pool).
  Backend& backend() const { return *backend_; }
  ExecContext context(Isa isa, ThreadPool* pool) const { return backend_->context(isa, pool); }

 private:
  std::shared_ptr<Backend> backend_;
};

// The families, over weights whose memory `owner` keeps alive, run on `backend`.
std::shared_ptr<ModelFamily> make_llama(const LlamaConfig& c, LlamaWeights w, std::shared_ptr<const void> owner,
                                        std::shared_ptr<Backend> backend);
std::shared_ptr<ModelFamily> make_gpt2(const Gpt2Config& c, Gpt2Weights w, std::shared_ptr<const void> owner,
                                       std::shared_ptr<Backend> backend);

}  // namespace tk
