// The Llama family (Llama, Mistral, Qwen2/3, SmolLM, Gemma 3) behind ModelFamily: GGUF tensor names, LoRA on
// the seven projections, full fine-tuning of every weight, a KV cache for generation.
#include "family.h"

#include "../core/error.h"
#include "llama_train.h"

namespace tk {
namespace {

const char* const kTargets[kProjections] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
const char* const kGgufNames[kProjections] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
// Phi-3's fused modules (PEFT's names) -> the first projection of each; the others of the block
// follow it (k, v after q; up after gate) and share its adapter.
const char* const kFusedTargets[] = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"};
const int kFusedFirst[] = {kQ, kO, kGate, kDown};
// The fused adapters' names: the engine's (not llama.cpp's, whose phi3 calls gate_up ffn_up).
std::string fused_name(int p) { return p == kQ ? "attn_qkv" : p == kGate ? "ffn_gate_up" : kGgufNames[p]; }
// The projections a fused block's adapter also covers.
std::vector<int> fused_followers(int p) { return p == kQ ? std::vector<int>{kK, kV} : p == kGate ? std::vector<int>{kUp} : std::vector<int>{}; }

struct LlamaDecodeCache final : DecodeCache {
  LlamaCache cache;
  LlamaDecodeCache(const LlamaConfig& c, int64_t limit, const ExecContext& x)
      : DecodeCache(limit), cache(c, std::min(limit, kInitialCacheTokens), x) {}
  int64_t capacity() const override { return cache.capacity; }
  int64_t length() const override { return cache.length; }
  void reset() override { cache.length = 0, cache.tokens.clear(); }

 protected:
  void grow(int64_t capacity, const ExecContext& x) override { cache.grow(capacity, x); }
};

class Llama final : public ModelFamily {
 public:
  Llama(const LlamaConfig& c, LlamaWeights w, std::shared_ptr<const void> owner, std::shared_ptr<Backend> backend)
      : ModelFamily(std::move(backend)), c_(c), w_(std::move(w)), owner_(std::move(owner)) {}
  const char* name() const override { return "llama"; }
  int64_t vocab() const override { return c_.vocab; }
  int64_t layers() const override { return c_.layers; }
  int64_t dim() const override { return c_.dim; }
  int64_t max_positions() const override { return 0; }

  std::vector<std::string> lora_targets() const override {
    if (c_.fused_projections) return {std::begin(kFusedTargets), std::end(kFusedTargets)};
    return {std::begin(kTargets), std::end(kTargets)};
  }

  void add_lora(Trainable& t, const LoraSpec& spec, const std::vector<std::string>& targets,
                const std::vector<bool>& layers) const override {
    if (c_.fused_projections) return add_fused_lora(t, spec, targets, layers);
    std::array<bool, kProjections> on{};
    for (const std::string& name : targets) {
      int found = -1;
      for (int p = 0; p < kProjections; ++p)
        if (name == kTargets[p]) found = p;
      check_arg(found >= 0, "Expected targets among q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj but received \"" + name + "\"");
      on[found] = true;
    }
    add_lora_adapters(t, c_.layers, kProjections, spec, [&](int64_t li, int p) {
      if (!on[p] || !layers[li]) return std::pair<int64_t, int64_t>{0, 0};
      const WeightView& w = projection(w_.layers[li], p);  // [out, in]
      return std::pair<int64_t, int64_t>{w.cols, w.rows};
    }, [&](int64_t li, int p) { return "blk." + std::to_string(li) + "." + kGgufNames[p]; });
  }

  // Phi-3: an adapter on each fused matrix: A [r, dim], B [rows of the block, r]; the block's
  // projections read B's rows in order (q's, then k's, then v's) with the one A, so the sum of
  // their gradients is the fused adapter's, and they share its dropout mask (seeded by A's offset).
  void add_fused_lora(Trainable& t, const LoraSpec& spec, const std::vector<std::string>& targets,
                      const std::vector<bool>& layers) const {
    std::array<bool, kProjections> on{};
    for (const std::string& name : targets) {
      int found = -1;
      for (int i = 0; i < 4; ++i)
        if (name == kFusedTargets[i]) found = kFusedFirst[i];
      check_arg(found >= 0, "Expected targets among qkv_proj, o_proj, gate_up_proj, down_proj (Phi-3's modules) but received \"" + name + "\"");
      on[found] = true;
    }
    add_lora_adapters(t, c_.layers, kProjections, spec, [&](int64_t li, int p) {
      if (!on[p] || !layers[li]) return std::pair<int64_t, int64_t>{0, 0};
      const LlamaLayer& L = w_.layers[li];
      int64_t rows = projection(L, p).rows;
      for (int f : fused_followers(p)) rows += projection(L, f).rows;
      return std::pair<int64_t, int64_t>{projection(L, p).cols, rows};
    }, [&](int64_t li, int p) { return "blk." + std::to_string(li) + "." + fused_name(p); });
    for (int64_t li = 0; li < c_.layers; ++li)
      for (int p : {int(kQ), int(kGate)}) {
        const LoraSlot first = t.lora[li][p];
        if (!first.on) continue;
        int64_t row = projection(w_.layers[li], p).rows;
        for (int f : fused_followers(p)) {
          LoraSlot& s = t.lora[li][f];
          s = first;
          s.b_offset = first.b_offset + row * first.r;
          row += projection(w_.layers[li], f).rows;
        }
      }
  }

  void enable_full_training(Trainable& t, const ExecContext& x) const override {
    FullLayout& F = t.full;
    F.on = true;
    F.model.assign(kLlamaModelWeights, -1);
    F.layers.assign(static_cast<size_t>(c_.layers), std::vector<int64_t>(kLlamaLayerWeights, -1));
    const bool tied = w_.lm_head.data == w_.embed.data;
    F.model[kEmbed] = append_full(t, "token_embd.weight", "embed", w_.embed, x);
    for (int64_t li = 0; li < c_.layers; ++li) {
      const LlamaLayer& L = w_.layers[li];
      const std::string p = "blk." + std::to_string(li) + ".", group = "layer." + std::to_string(li);
      std::vector<int64_t>& at = F.layers[li];
      at[kAttnNorm] = append_full(t, p + "attn_norm.weight", group, L.attn_norm, c_.dim);
      at[kFfnNorm] = append_full(t, p + "ffn_norm.weight", group, L.ffn_norm, c_.dim);
      if (L.q_norm) {
        at[kQNorm] = append_full(t, p + "attn_q_norm.weight", group, L.q_norm, c_.head_dim);
        at[kKNorm] = append_full(t, p + "attn_k_norm.weight", group, L.k_norm, c_.head_dim);
      }
      if (L.post_attn_norm) {
        at[kPostAttnNorm] = append_full(t, p + "post_attention_norm.weight", group, L.post_attn_norm, c_.dim);
        at[kPostFfnNorm] = append_full(t, p + "post_ffw_norm.weight", group, L.post_ffn_norm, c_.dim);
      }
      for (int k = 0; k < kProjections; ++k) at[k] = append_full(t, p + kGgufNames[k] + ".weight", group, projection(L, k), x);
    }
    F.model[kOutNorm] = append_full(t, "output_norm.weight", "output", w_.out_norm, c_.dim);
    if (!tied) F.model[kLmHead] = append_full(t, "output.weight", "output", w_.lm_head, x);
  }

  StepResult step(Trainable& t, const int32_t* tokens, const int32_t* labels, int64_t batch, int64_t seq, const StepOptions& o,
                  const ExecContext& x) const override {
    return llama_step(c_, llama_weights_with(w_, c_, &t), t, tokens, labels, batch, seq, o, x);
  }

  void logits(const Trainable* t, const int32_t* tokens, int64_t n, float* out, const ExecContext& x) const override {
    llama_forward(c_, llama_weights_with(w_, c_, t), tokens, n, nullptr, out, x, t);
  }

  std::unique_ptr<DecodeCache> new_cache(int64_t limit, const ExecContext& x) const override {
    return std::make_unique<LlamaDecodeCache>(c_, limit, x);
  }

  void decode(const Trainable* t, DecodeCache& cache, const int32_t* tokens, int64_t n, float* logits,
              const ExecContext& x) const override {
    cache.make_room(n, x);
    llama_forward(c_, llama_weights_with(w_, c_, t), tokens, n, &static_cast<LlamaDecodeCache&>(cache).cache, logits, x, t);
  }

 private:
  LlamaConfig c_;
  LlamaWeights w_;
  std::shared_ptr<const void> owner_;
};

}  // namespace

std::shared_ptr<ModelFamily> make_llama(const LlamaConfig& c, LlamaWeights w, std::shared_ptr<const void> owner,
                                       std::shared_ptr<Backend> backend) {
  return std::make_shared<Llama>(c, std::move(w), std::move(owner), std::move(backend));
}

}  // namespace tk
