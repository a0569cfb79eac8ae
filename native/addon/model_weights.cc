// Model construction from JS: the config object and the named weight tensors (GGUF names for the
// Llama family, Hugging Face names for GPT-2) into a ModelFamily. Marshalling only: the views
// point into the tensors' memory, which the family keeps alive.
#include "model_weights.h"

#include <cmath>

#include "operands.h"
#include "../backend/registry.h"
#include "options.h"

namespace tk {
namespace {

struct Keep {
  std::vector<BOperand> matrices;
  std::vector<Tensor> vectors;
};

constexpr int64_t kMax = int64_t{1} << 31;

// The backend a model runs on (config.backend: "cpu", "cuda", "cuda:1").
std::shared_ptr<Backend> backend_of(const Napi::Object& cfg) { return make_backend(option_string(cfg, "backend", "cpu")); }

// Every frozen weight of a model, so that they can be placed on its backend: the matrices, and the
// vectors with their lengths.
struct WeightList {
  std::vector<WeightView*> matrices;
  std::vector<std::pair<const float**, int64_t>> vectors;
  void vector(const float*& v, int64_t n) {
    if (v) vectors.push_back({&v, n});
  }
};

// Checks that the weights fit on the backend, then places them there (the CPU keeps them as they are).
void place(Backend& b, const WeightList& list) {
  size_t bytes = 0;
  for (const WeightView* w : list.matrices) bytes += weight_data_bytes(*w) + 4 * weight_absmax_count(*w);
  for (const auto& v : list.vectors) bytes += 4 * v.second;
  b.check_room(bytes, "the model's weights");
  for (WeightView* w : list.matrices) *w = b.place(*w);
  for (const auto& v : list.vectors) *v.first = b.place(*v.first, v.second);
}

std::shared_ptr<ModelFamily> llama(const Napi::Object& cfg, const Napi::Object& tensors) {
  LlamaConfig c;
  c.dim = option_int(cfg, "dim", 0, 1, kMax);
  c.layers = option_int(cfg, "layers", 0, 1, 4096);
  c.ffn = option_int(cfg, "ffn", 0, 1, kMax);
  c.heads = option_int(cfg, "heads", 0, 1, 4096);
  c.kv_heads = option_int(cfg, "kvHeads", c.heads, 1, c.heads);
  c.head_dim = option_int(cfg, "headDim", c.dim / c.heads, 2, kMax);
  c.vocab = option_int(cfg, "vocab", 0, 1, kMax);
  c.eps = static_cast<float>(option_number(cfg, "eps", 1e-5));
  c.rope_theta = static_cast<float>(option_number(cfg, "ropeTheta", 10000.0));
  c.interleaved_rope = option_bool(cfg, "interleavedRope", true);
  c.sliding_window = option_int(cfg, "slidingWindow", 0, 0, kMax);
  c.embed_scale = static_cast<float>(option_number(cfg, "embedScale", 0.0));
  c.gelu_gate = option_string(cfg, "activation", "silu") == "gelu_tanh";
  check_arg(c.gelu_gate || option_string(cfg, "activation", "silu") == "silu", "Expected activation \"silu\" or \"gelu_tanh\"");
  c.query_pre_attn_scalar = option_number(cfg, "queryPreAttnScalar", 0.0);
  c.rope_theta_local = static_cast<float>(option_number(cfg, "ropeThetaLocal", 0.0));
  c.rope_attention_factor = option_number(cfg, "ropeAttentionFactor", 1.0);
  check_arg(std::isfinite(c.rope_attention_factor) && c.rope_attention_factor > 0, "Expected ropeAttentionFactor to be a positive number");
  c.fused_projections = option_bool(cfg, "fusedProjections", false);
  c.attn_softcap = static_cast<float>(option_number(cfg, "attnSoftcap", 0.0));
  c.logit_softcap = static_cast<float>(option_number(cfg, "logitSoftcap", 0.0));
  check_arg(std::isfinite(c.attn_softcap) && c.attn_softcap >= 0 && std::isfinite(c.logit_softcap) && c.logit_softcap >= 0,
            "Expected attnSoftcap and logitSoftcap to be finite numbers >= 0");
  check_arg(std::isfinite(c.embed_scale) && c.embed_scale >= 0 && std::isfinite(c.query_pre_attn_scalar) && c.query_pre_attn_scalar >= 0 &&
                std::isfinite(c.rope_theta_local) && c.rope_theta_local >= 0,
            "Expected embedScale, queryPreAttnScalar and ropeThetaLocal to be finite numbers >= 0");
  const Napi::Value windows = cfg.Get("layerWindows");
  if (!windows.IsUndefined() && !windows.IsNull()) {
    check_arg(windows.IsArray() && windows.As<Napi::Array>().Length() == static_cast<uint32_t>(c.layers),
              "Expected layerWindows to be an array of one window per layer (" + std::to_string(c.layers) + ")");
    Napi::Array a = windows.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      const double v = a.Get(i).IsNumber() ? a.Get(i).As<Napi::Number>().DoubleValue() : -1;
      check_arg(v >= 0 && v < static_cast<double>(kMax) && v == std::floor(v), "Expected layerWindows[" + std::to_string(i) + "] to be an integer >= 0");
      c.layer_windows.push_back(static_cast<int64_t>(v));
    }
  }
  check_arg(c.heads % c.kv_heads == 0, "Expected heads divisible by kvHeads");
  check_arg(c.eps > 0 && c.rope_theta > 0, "Expected eps > 0 and ropeTheta > 0 (either at 0 or below gives NaN logits)");
  check_arg(c.head_dim % 2 == 0, "Expected an even headDim");
  c.rotary_dim = option_int(cfg, "rotaryDim", c.head_dim, 2, c.head_dim);
  check_arg(c.rotary_dim % 2 == 0, "Expected an even rotaryDim");
  const int64_t pairs = c.rotary_dim / 2;
  // RoPE divisors: one positive number per rotated pair.
  auto read_factors = [&](const char* key, std::vector<float>& out) {
    const Napi::Value factors = cfg.Get(key);
    if (factors.IsUndefined() || factors.IsNull()) return;
    check_arg(factors.IsArray() && factors.As<Napi::Array>().Length() == static_cast<uint32_t>(pairs),
              std::string("Expected ") + key + " to be an array of rotaryDim / 2 = " + std::to_string(pairs) + " numbers");
    Napi::Array a = factors.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      const double f = a.Get(i).IsNumber() ? a.Get(i).As<Napi::Number>().DoubleValue() : -1;
      check_arg(std::isfinite(f) && f > 0, std::string("Expected ") + key + "[" + std::to_string(i) + "] to be a positive number");
      out.push_back(static_cast<float>(f));
    }
  };
  read_factors("ropeFreqFactors", c.rope_freq_factors);
  read_factors("ropeFreqFactorsLong", c.rope_freq_factors_long);
  c.rope_long_after = option_int(cfg, "ropeLongAfter", 0, 0, kMax);
  c.rope_dynamic_factor = option_number(cfg, "ropeDynamicFactor", 0.0);
  c.rope_dynamic_after = option_int(cfg, "ropeDynamicAfter", 0, 0, kMax);
  check_arg(c.rope_dynamic_factor == 0 || (std::isfinite(c.rope_dynamic_factor) && c.rope_dynamic_factor > 0 && c.rope_dynamic_after > 0),
            "Expected ropeDynamicFactor 0 (off) or a positive number with ropeDynamicAfter > 0");
  check_arg(c.rope_freq_factors_long.empty() || (c.rope_long_after > 0 && !c.rope_freq_factors.empty()),
            "Expected ropeFreqFactorsLong with ropeFreqFactors (the short ones) and ropeLongAfter > 0");
  if (c.rotary_dim == c.head_dim) c.rotary_dim = 0;
  const bool tied = option_bool(cfg, "tiedEmbeddings", false);
  const bool qkv_bias = option_bool(cfg, "qkvBias", false);
  const bool qk_norm = option_bool(cfg, "qkNorm", false);
  const bool post_norms = option_bool(cfg, "postNorms", false);
  auto keep = std::make_shared<Keep>();
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) { return named_matrix(tensors, name, rows, cols, keep->matrices); };
  auto vector = [&](const std::string& name, int64_t size) { return named_vector(tensors, name, size, keep->vectors); };
  const int64_t qdim = c.heads * c.head_dim, kvdim = c.kv_heads * c.head_dim;
  LlamaWeights w;
  w.embed = matrix("token_embd.weight", c.vocab, c.dim);
  for (int64_t i = 0; i < c.layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LlamaLayer L;
    L.attn_norm = vector(p + "attn_norm.weight", c.dim);
    L.q = matrix(p + "attn_q.weight", qdim, c.dim);
    L.k = matrix(p + "attn_k.weight", kvdim, c.dim);
    L.v = matrix(p + "attn_v.weight", kvdim, c.dim);
    if (qkv_bias) {
      L.q_bias = vector(p + "attn_q.bias", qdim);
      L.k_bias = vector(p + "attn_k.bias", kvdim);
      L.v_bias = vector(p + "attn_v.bias", kvdim);
    }
    if (qk_norm) {
      L.q_norm = vector(p + "attn_q_norm.weight", c.head_dim);
      L.k_norm = vector(p + "attn_k_norm.weight", c.head_dim);
    }
    L.o = matrix(p + "attn_output.weight", c.dim, qdim);
    L.ffn_norm = vector(p + "ffn_norm.weight", c.dim);
    L.gate = matrix(p + "ffn_gate.weight", c.ffn, c.dim);
    L.up = matrix(p + "ffn_up.weight", c.ffn, c.dim);
    L.down = matrix(p + "ffn_down.weight", c.dim, c.ffn);
    if (post_norms) {
      L.post_attn_norm = vector(p + "post_attention_norm.weight", c.dim);
      L.post_ffn_norm = vector(p + "post_ffw_norm.weight", c.dim);
    }
    w.layers.push_back(L);
  }
  w.out_norm = vector("output_norm.weight", c.dim);
  w.lm_head = tied ? w.embed : matrix("output.weight", c.vocab, c.dim);
  std::shared_ptr<Backend> backend = backend_of(cfg);
  WeightList list;
  list.matrices = {&w.embed, &w.lm_head};
  list.vector(w.out_norm, c.dim);
  for (LlamaLayer& L : w.layers) {
    for (int p = 0; p < kProjections; ++p) list.matrices.push_back(&projection(L, p));
    list.vector(L.attn_norm, c.dim), list.vector(L.ffn_norm, c.dim);
    list.vector(L.q_bias, qdim), list.vector(L.k_bias, kvdim), list.vector(L.v_bias, kvdim);
    list.vector(L.q_norm, c.head_dim), list.vector(L.k_norm, c.head_dim);
    list.vector(L.post_attn_norm, c.dim), list.vector(L.post_ffn_norm, c.dim);
  }
  place(*backend, list);
  return make_llama(c, std::move(w), keep, std::move(backend));
}

std::shared_ptr<ModelFamily> gpt2(const Napi::Object& cfg, const Napi::Object& tensors) {
  Gpt2Config c;
  c.dim = option_int(cfg, "dim", 0, 1, kMax);
  c.layers = option_int(cfg, "layers", 0, 1, 4096);
  c.heads = option_int(cfg, "heads", 0, 1, 4096);
  c.vocab = option_int(cfg, "vocab", 0, 1, kMax);
  c.positions = option_int(cfg, "positions", 0, 1, kMax);
  c.ffn = option_int(cfg, "ffn", 4 * c.dim, 1, kMax);
  c.eps = static_cast<float>(option_number(cfg, "eps", 1e-5));
  check_arg(c.dim % c.heads == 0, "Expected dim divisible by heads");
  check_arg(c.eps > 0, "Expected eps > 0 (0 or below gives NaN logits)");
  auto keep = std::make_shared<Keep>();
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) { return named_matrix(tensors, name, rows, cols, keep->matrices); };
  auto vector = [&](const std::string& name, int64_t size) { return named_vector(tensors, name, size, keep->vectors); };
  const int64_t d = c.dim;
  Gpt2Weights w;
  w.wte = matrix("transformer.wte.weight", c.vocab, d);
  w.wpe = vector("transformer.wpe.weight", c.positions * d);
  for (int64_t i = 0; i < c.layers; ++i) {
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    Gpt2Layer L;
    L.ln1_w = vector(p + "ln_1.weight", d), L.ln1_b = vector(p + "ln_1.bias", d);
    L.attn = matrix(p + "attn.c_attn.weight", d, 3 * d), L.attn_b = vector(p + "attn.c_attn.bias", 3 * d);
    L.proj = matrix(p + "attn.c_proj.weight", d, d), L.proj_b = vector(p + "attn.c_proj.bias", d);
    L.ln2_w = vector(p + "ln_2.weight", d), L.ln2_b = vector(p + "ln_2.bias", d);
    L.fc = matrix(p + "mlp.c_fc.weight", d, c.ffn), L.fc_b = vector(p + "mlp.c_fc.bias", c.ffn);
    L.fc_proj = matrix(p + "mlp.c_proj.weight", c.ffn, d), L.fc_proj_b = vector(p + "mlp.c_proj.bias", d);
    w.layers.push_back(L);
  }
  w.lnf_w = vector("transformer.ln_f.weight", d);
  w.lnf_b = vector("transformer.ln_f.bias", d);
  std::shared_ptr<Backend> backend = backend_of(cfg);
  WeightList list;
  list.matrices = {&w.wte};
  list.vector(w.wpe, c.positions * d), list.vector(w.lnf_w, d), list.vector(w.lnf_b, d);
  for (Gpt2Layer& L : w.layers) {
    list.matrices.insert(list.matrices.end(), {&L.attn, &L.proj, &L.fc, &L.fc_proj});
    list.vector(L.ln1_w, d), list.vector(L.ln1_b, d), list.vector(L.attn_b, 3 * d), list.vector(L.proj_b, d);
    list.vector(L.ln2_w, d), list.vector(L.ln2_b, d), list.vector(L.fc_b, c.ffn), list.vector(L.fc_proj_b, d);
  }
  place(*backend, list);
  return make_gpt2(c, std::move(w), keep, std::move(backend));
}

}  // namespace

std::shared_ptr<ModelFamily> model_from_js(const std::string& family, const Napi::Object& config, const Napi::Object& tensors) {
  if (family == "llama") return llama(config, tensors);
  if (family == "gpt2") return gpt2(config, tensors);
  fail(ErrorCode::InvalidArgument, "Expected a model family 'llama' or 'gpt2' but received '" + family + "'");
}

}  // namespace tk
