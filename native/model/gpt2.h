// The GPT-2 decoder (GPT2LMHeadModel): token + learned position embeddings, pre-LayerNorm blocks
// with fused q/k/v (Conv1D weights stored [in, out], with biases), GELU (tanh approximation,
// "gelu_new") MLP, final LayerNorm, LM head tied to the token embedding. Incremental decoding
// here; the training step (which also gives the logits of whole sequences) is model/gpt2_train.h.
#pragma once
#include <cstdint>
#include <vector>

#include "../backend/backend.h"
#include "trainable.h"

namespace tk {

struct Gpt2Config {
  int64_t dim = 0, layers = 0, heads = 0, vocab = 0, positions = 0, ffn = 0;
  float eps = 1e-5f;
};

struct Gpt2Layer {
  const float *ln1_w = nullptr, *ln1_b = nullptr, *ln2_w = nullptr, *ln2_b = nullptr;
  WeightView attn, proj, fc, fc_proj;  // Conv1D: [in, out]
  const float *attn_b = nullptr, *proj_b = nullptr, *fc_b = nullptr, *fc_proj_b = nullptr;
};

struct Gpt2Weights {
  WeightView wte;               // [vocab, dim]
  const float* wpe = nullptr;   // [positions, dim]
  std::vector<Gpt2Layer> layers;
  const float *lnf_w = nullptr, *lnf_b = nullptr;
};

// PEFT's target names: c_attn, c_proj (attention's and the MLP's), c_fc.
enum Gpt2Projection { kGpt2Attn = 0, kGpt2Proj, kGpt2Fc, kGpt2FcProj, kGpt2Projections };
// Full fine-tuning's per-layer weights (Trainable::full.layers[layer][...]): the four Conv1D
// weights, their biases, then the two LayerNorms; and the model-wide ones.
enum Gpt2LayerWeight {
  kGpt2Bias = kGpt2Projections,  // + projection
  kGpt2Ln1W = 2 * kGpt2Projections, kGpt2Ln1B, kGpt2Ln2W, kGpt2Ln2B, kGpt2LayerWeights
};
enum Gpt2ModelWeight { kWte = 0, kWpe, kLnfW, kLnfB, kGpt2ModelWeights };

const WeightView& gpt2_projection(const Gpt2Layer& L, int p);
const float* gpt2_bias(const Gpt2Layer& L, int p);
// The position embedding as an fp32 table (the rows embedding_forward gathers).
WeightView gpt2_positions(const Gpt2Weights& w, const Gpt2Config& c);

// The weights a step or a forward uses: in full fine-tuning every weight is an fp32 slice of the
// trainable parameters; else the loaded ones.
Gpt2Weights gpt2_weights_with(const Gpt2Weights& w, const Gpt2Config& c, const Trainable* t);

// Keys and values of the tokens seen so far: [layers, capacity, dim] each, on the backend.
struct Gpt2Cache {
  int64_t capacity = 0, length = 0;
  int64_t layers = 0, dim = 0;
  Buffer k, v;
  Gpt2Cache(const Gpt2Config& c, int64_t capacity, const ExecContext& x);
  // Room for `capacity` tokens, the cached ones kept.
  void grow(int64_t capacity, const ExecContext& x);
};

// Incremental decoding: tokens [n] after the cached ones (whose count grows by n; the caller
// checks the room and the model's positions); the last token's logits [vocab] are written. The
// trainable state's adapters (t may be null) are applied; `w` comes from gpt2_weights_with.
void gpt2_decode(const Gpt2Config& c, const Gpt2Weights& w, const Trainable* t, const int32_t* tokens, int64_t n,
                 Gpt2Cache& cache, float* logits, const ExecContext& x);

}  // namespace tk
