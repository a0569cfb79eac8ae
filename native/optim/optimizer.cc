#include "optimizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "../backend/backend.h"
#include "../core/error.h"

namespace tk {
namespace {

// [offset, offset + length) pieces of [0, size) with their scale, in order; later ranges win.
std::vector<LrRange> lr_segments(int64_t size, const std::vector<LrRange>& ranges) {
  std::map<int64_t, float> from;  // scale from each boundary on
  from[0] = 1.0f;
  for (const LrRange& r : ranges) {
    const int64_t a = std::clamp<int64_t>(r.offset, 0, size), b = std::clamp<int64_t>(r.offset + r.length, 0, size);
    if (a >= b) continue;
    auto after = std::prev(from.upper_bound(b));
    const float resume = after->second;  // what held at b before this range
    from.erase(from.lower_bound(a), from.upper_bound(b));
    from[a] = r.scale;
    if (b < size) from[b] = resume;
  }
  std::vector<LrRange> out;
  for (auto it = from.begin(); it != from.end(); ++it) {
    const auto next = std::next(it);
    const int64_t end = next == from.end() ? size : next->first;
    if (end > it->first) out.push_back({it->first, end - it->first, it->second});
  }
  return out;
}

}  // namespace

ShardLayout shard_layout(int64_t size, int world) {
  check_arg(size >= 0 && world >= 1, "Expected a vector size >= 0 and a world size >= 1");
  ShardLayout l;
  l.size = size, l.world = world;
  if (world == 1) {
    l.shard = size;
  } else {
    const int64_t per = (size + world - 1) / world;
    l.shard = std::max<int64_t>(kNormChunk, (per + kNormChunk - 1) / kNormChunk * kNormChunk);
  }
  return l;
}

OptimizerStepResult optimizer_step(float* params, float* grads, float* m, float* v, const ShardLayout& L,
                                   const OptimizerStepArgs& a, int64_t step, Comm& comm, const ExecContext& x) {
  check_arg(comm.world() == L.world, "Expected the shard layout's world size to be the communicator's");
  check_arg(step >= 1, "Expected a step count >= 1");
  check_arg(a.stage >= 0 && a.stage <= 2, "Expected ZeRO stage 0, 1 or 2 but received " + std::to_string(a.stage));
  const int world = L.world, rank = comm.rank();
  const bool sharded = moments_sharded(L, a.stage);
  OptimizerStepResult result;
  // Times a collective and counts what a ring sends per rank: (world-1)/world of the vector for a
  // reduce-scatter or an all-gather, twice that for an all-reduce (a reduce-scatter + all-gather).
  auto timed = [&](double ring_sends, int64_t values, int64_t bytes_per_value, auto&& call) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    result.comm_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    result.comm_bytes += ring_sends * (world - 1) / world * static_cast<double>(values * bytes_per_value);
  };
  if (world > 1 && a.stage == 2) {
    if (!a.grads_reduced)  // (in training the backward has reduced them already)
      timed(1, L.padded(), 4, [&] { comm.reduce_scatter_sum(grads, grads + L.shard * rank, L.shard, CommType::F32); });
  } else if (world > 1) {
    const int64_t n = a.stage == 0 ? L.size : L.padded();
    timed(2, n, 4, [&] { comm.all_reduce_sum(grads, n, CommType::F32); });
  }
  double tokens = a.tokens;
  timed(2, 1, 8, [&] { comm.all_reduce_sum(&tokens, 1, CommType::F64); });
  result.tokens = tokens;
  const int64_t begin = sharded ? L.begin(rank) : 0, end = sharded ? L.end(rank) : L.size;
  // Stage 2 leaves other shards' partial sums (and, in place, a copy of its own) across the padded
  // vector: all of it is zeroed.
  const int64_t used = a.stage == 2 && world > 1 ? L.padded() : L.size;
  auto zero_grads = [&] {
    if (!a.grads_reduced) return x.backend->fill_zero(grads, static_cast<size_t>(used) * sizeof(float));
    // Only the shard holds values: writing zeros over the rest would bring its memory back.
    const int64_t b = L.begin(rank), e = L.end(rank);
    if (e > b) x.backend->fill_zero(grads + b, static_cast<size_t>(e - b) * sizeof(float));
  };
  if (tokens <= 0) {  // nothing was labelled: no update
    zero_grads();
    return result;
  }
  // Σ g² of the sums, per chunk of the shard, gathered in chunk order over the ranks (unsharded:
  // every chunk here). Shards start on chunk boundaries, so the chunks are the same either way.
  const int64_t span = sharded ? L.shard : L.size, chunks = (span + kNormChunk - 1) / kNormChunk;
  const int parts = sharded ? world : 1;
  std::vector<double> partial(static_cast<size_t>(chunks * parts), 0.0);
  double* mine = partial.data() + (sharded ? rank * chunks : 0);  // chunks past the shard's end stay 0
  if (end > begin) x.op->sum_squares_chunks(x, grads + begin, end - begin, kNormChunk, mine);
  if (sharded) timed(1, chunks * world, 8, [&] { comm.all_gather(mine, partial.data(), chunks, CommType::F64); });
  double sum = 0.0;
  for (double p : partial) sum += p;
  const double norm = std::sqrt(sum) / tokens;
  result.grad_norm = norm;
  double coef = 1.0 / tokens;
  if (a.max_grad_norm > 0) {
    const double clip = a.max_grad_norm / (norm + 1e-6);
    if (clip < 1.0) coef *= clip;
  }
  // The shard's update, one AdamW call per run of equal learning rate.
  for (const LrRange& s : lr_segments(L.size, a.lr_scales)) {
    const int64_t s0 = std::max(begin, s.offset), s1 = std::min(end, s.offset + s.length);
    if (s0 >= s1) continue;
    AdamWConfig c = a.adamw;
    c.lr = a.adamw.lr * s.scale;
    x.op->adamw_step(x, params + s0, grads + s0, m + (s0 - begin), v + (s0 - begin), s1 - s0, c, step,
                     static_cast<float>(coef));
  }
  zero_grads();
  if (sharded) timed(1, L.padded(), 4, [&] { comm.all_gather(params + L.shard * rank, params, L.shard, CommType::F32); });
  return result;
}

}  // namespace tk
