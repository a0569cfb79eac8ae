// GPT-2 behind ModelFamily: Hugging Face tensor names, LoRA on c_attn / c_proj / c_fc (c_proj is
// attention's and the MLP's, as in PEFT), full fine-tuning of every weight and bias, a KV cache.
#include "family.h"

#include "../core/error.h"
#include "gpt2_train.h"

namespace tk {
namespace {

const char* const kNames[kGpt2Projections] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};

struct Gpt2DecodeCache final : DecodeCache {
  Gpt2Cache cache;
  Gpt2DecodeCache(const Gpt2Config& c, int64_t limit, const ExecContext& x)
      : DecodeCache(limit), cache(c, std::min(limit, kInitialCacheTokens), x) {}
  int64_t capacity() const override { return cache.capacity; }
  int64_t length() const override { return cache.length; }
  void reset() override { cache.length = 0; }

 protected:
  void grow(int64_t capacity, const ExecContext& x) override { cache.grow(capacity, x); }
};

class Gpt2 final : public ModelFamily {
 public:
  Gpt2(const Gpt2Config& c, Gpt2Weights w, std::shared_ptr<const void> owner, std::shared_ptr<Backend> backend)
      : ModelFamily(std::move(backend)), c_(c), w_(std::move(w)), owner_(std::move(owner)) {}
  const char* name() const override { return "gpt2"; }
  int64_t vocab() const override { return c_.vocab; }
  int64_t layers() const override { return c_.layers; }
  int64_t dim() const override { return c_.dim; }
  int64_t max_positions() const override { return c_.positions; }

  std::vector<std::string> lora_targets() const override { return {"c_attn", "c_proj", "c_fc"}; }

  void add_lora(Trainable& t, const LoraSpec& spec, const std::vector<std::string>& targets,
                const std::vector<bool>& layers) const override {
    std::array<bool, kGpt2Projections> on{};
    for (const std::string& name : targets) {
      check_arg(name == "c_attn" || name == "c_proj" || name == "c_fc", "Expected targets among c_attn, c_proj, c_fc but received \"" + name + "\"");
      if (name == "c_attn") on[kGpt2Attn] = true;
      if (name == "c_proj") on[kGpt2Proj] = on[kGpt2FcProj] = true;
      if (name == "c_fc") on[kGpt2Fc] = true;
    }
    add_lora_adapters(t, c_.layers, kGpt2Projections, spec, [&](int64_t li, int p) {
      if (!on[p] || !layers[li]) return std::pair<int64_t, int64_t>{0, 0};
      const WeightView& w = gpt2_projection(w_.layers[li], p);  // Conv1D [in, out]
      return std::pair<int64_t, int64_t>{w.rows, w.cols};
    }, [&](int64_t li, int p) { return "transformer.h." + std::to_string(li) + "." + kNames[p]; });
  }

  void enable_full_training(Trainable& t, const ExecContext& x) const override {
    FullLayout& F = t.full;
    F.on = true;
    F.model.assign(kGpt2ModelWeights, -1);
    F.layers.assign(static_cast<size_t>(c_.layers), std::vector<int64_t>(kGpt2LayerWeights, -1));
    const int64_t d = c_.dim;
    F.model[kWte] = append_full(t, "transformer.wte.weight", "embed", w_.wte, x);
    F.model[kWpe] = append_full(t, "transformer.wpe.weight", "embed", w_.wpe, c_.positions * d);
    t.tensors.back().shape = {c_.positions, d};
    for (int64_t li = 0; li < c_.layers; ++li) {  // in transformers' parameter order
      const Gpt2Layer& L = w_.layers[li];
      const std::string p = "transformer.h." + std::to_string(li) + ".", group = "layer." + std::to_string(li);
      std::vector<int64_t>& at = F.layers[li];
      auto conv = [&](int k) {
        at[k] = append_full(t, p + kNames[k] + ".weight", group, gpt2_projection(L, k), x);
        at[kGpt2Bias + k] = append_full(t, p + kNames[k] + ".bias", group, gpt2_bias(L, k), gpt2_projection(L, k).cols);
      };
      at[kGpt2Ln1W] = append_full(t, p + "ln_1.weight", group, L.ln1_w, d);
      at[kGpt2Ln1B] = append_full(t, p + "ln_1.bias", group, L.ln1_b, d);
      conv(kGpt2Attn), conv(kGpt2Proj);
      at[kGpt2Ln2W] = append_full(t, p + "ln_2.weight", group, L.ln2_w, d);
      at[kGpt2Ln2B] = append_full(t, p + "ln_2.bias", group, L.ln2_b, d);
      conv(kGpt2Fc), conv(kGpt2FcProj);
    }
    F.model[kLnfW] = append_full(t, "transformer.ln_f.weight", "output", w_.lnf_w, d);
    F.model[kLnfB] = append_full(t, "transformer.ln_f.bias", "output", w_.lnf_b, d);
  }

  StepResult step(Trainable& t, const int32_t* tokens, const int32_t* labels, int64_t batch, int64_t seq, const StepOptions& o,
                  const ExecContext& x) const override {
    return gpt2_step(c_, gpt2_weights_with(w_, c_, &t), t, tokens, labels, batch, seq, o, x);
  }

  void logits(const Trainable* t, const int32_t* tokens, int64_t n, float* out, const ExecContext& x) const override {
    Trainable none;
    Trainable& state = t ? const_cast<Trainable&>(*t) : none;  // read-only: no backward
    std::vector<int32_t> labels(static_cast<size_t>(n), kIgnoreIndex);
    StepOptions o;
    o.backward = false, o.logits = out, o.lm_head = true;
    gpt2_step(c_, gpt2_weights_with(w_, c_, t), state, tokens, labels.data(), 1, n, o, x);
  }

  std::unique_ptr<DecodeCache> new_cache(int64_t limit, const ExecContext& x) const override {
    return std::make_unique<Gpt2DecodeCache>(c_, limit, x);
  }

  void decode(const Trainable* t, DecodeCache& cache, const int32_t* tokens, int64_t n, float* logits,
              const ExecContext& x) const override {
    cache.make_room(n, x);
    gpt2_decode(c_, gpt2_weights_with(w_, c_, t), t, tokens, n, static_cast<Gpt2DecodeCache&>(cache).cache, logits, x);
  }

 private:
  Gpt2Config c_;
  Gpt2Weights w_;
  std::shared_ptr<const void> owner_;
};

}  // namespace

std::shared_ptr<ModelFamily> make_gpt2(const Gpt2Config& c, Gpt2Weights w, std::shared_ptr<const void> owner,
                                       std::shared_ptr<Backend> backend) {
  return std::make_shared<Gpt2>(c, std::move(w), std::move(owner), std::move(backend));
}

}  // namespace tk
