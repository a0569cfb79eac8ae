// One optimizer step of a flat trainable state, on this rank's shard (ZeRO's layout; see
// ../../../shared/DESIGN.md "Data parallelism"):
//   1. gradients are sums over labelled tokens (the backward never scales them); with several
//      ranks they are summed over ranks (ZeRO stage 0 and 1: all-reduced, every rank holding the
//      sum; stage 2: each rank receiving its shard's sum only, reduce-scattered here or, in
//      training, reduced during each backward by gradient_reducer.h), and so is the window's
//      labelled-token count T;
//   2. the global norm of the mean gradient, ‖g‖ / T, from per-chunk partials of every shard
//      gathered in chunk order, so it is bit for bit the norm of the unsharded vector;
//   3. one pass over the shard (stage 0: the whole vector): g · (1/T) · clip (torch's
//      clip_grad_norm_ coefficient), AdamW at each range's learning rate, the gradient zeroed;
//   4. stages 1 and 2: the updated shards gathered, so every rank holds all parameters again.
// At world size 1 the shard is the whole vector and the collectives are no-ops.
#pragma once
#include <cstdint>
#include <vector>

#include "../backend/exec_context.h"
#include "../dist/comm.h"
#include "adamw.h"

namespace tk {

// The gradient norm is summed over chunks of this many values at fixed positions of the flat
// vector; shards start on chunk boundaries, so the chunks (and the sum) do not depend on the
// world size or the thread count.
constexpr int64_t kNormChunk = 4096;

// How a flat vector of `size` values splits over `world` ranks: rank r owns
// [r·shard, min((r+1)·shard, size)); vectors that are gathered are padded to world·shard.
struct ShardLayout {
  int64_t size = 0;
  int world = 1;
  int64_t shard = 0;  // values per rank: `size` at world size 1, else a multiple of kNormChunk
  int64_t padded() const { return shard * world; }
  int64_t begin(int rank) const { return std::min<int64_t>(size, shard * rank); }
  int64_t end(int rank) const { return std::min<int64_t>(size, shard * (rank + 1)); }
};
ShardLayout shard_layout(int64_t size, int world);

// Learning-rate multipliers of parameter ranges (discriminative rates; 0 freezes a range). Later
// ranges override earlier ones where they overlap; the rest steps at scale 1.
struct LrRange {
  int64_t offset = 0, length = 0;
  float scale = 1.0f;
};

struct OptimizerStepArgs {
  AdamWConfig adamw;
  double max_grad_norm = 0.0;  // 0: no clipping
  std::vector<LrRange> lr_scales;
  double tokens = 0.0;  // this rank's labelled tokens in the window (summed over ranks here)
  int stage = 1;        // ZeRO stage 0, 1 or 2 (which collectives; what m and v hold) when world > 1
  // Stage 2: the backward has already reduced each micro-batch to the shards' owners
  // (gradient_reducer.h): grads holds this rank's shard's sums and zeros elsewhere.
  bool grads_reduced = false;
};

// Values of m and v a rank keeps: its shard at stages 1 and 2 (world > 1), else the whole vector.
inline bool moments_sharded(const ShardLayout& l, int stage) { return l.world > 1 && stage >= 1; }

struct OptimizerStepResult {
  double grad_norm = 0.0;      // of the mean gradient, before clipping
  double tokens = 0.0;         // the window's labelled tokens over all ranks
  double comm_seconds = 0.0;   // wall time inside collectives (waiting for slower ranks included)
  double comm_bytes = 0.0;     // bytes this rank sent in them, as a ring algorithm sends them
};

// params and grads: this rank's full vectors (room for layout.padded() values when world > 1);
// m and v: the moments of this rank's shard only (layout.shard values) when moments_sharded, else
// of the whole vector. `step` is the step count after this one (>= 1). A window with no labelled token
// leaves everything unchanged but the zeroed gradients.
// Vectors are backend memory; the arithmetic runs through x's op table (x.backend fills zeros).
OptimizerStepResult optimizer_step(float* params, float* grads, float* m, float* v, const ShardLayout& layout,
                                   const OptimizerStepArgs& args, int64_t step, Comm& comm, const ExecContext& x);

}  // namespace tk
