#include "optimizer.h"

#include <algorithm>
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
  const int world = L.world, rank = comm.rank();
  // Stage 0: every rank holds the whole gradient sum (the later stages reduce-scatter instead).
  if (world > 1) comm.all_reduce_sum(grads, L.padded(), CommType::F32);
  double tokens = a.tokens;
  comm.all_reduce_sum(&tokens, 1, CommType::F64);
  OptimizerStepResult result;
  result.tokens = tokens;
  const int64_t begin = L.begin(rank), end = L.end(rank);
  auto zero_grads = [&] { x.backend->fill_zero(grads, static_cast<size_t>(L.size) * sizeof(float)); };
  if (tokens <= 0) {  // nothing was labelled: no update
    zero_grads();
    return result;
  }
  // Σ g² of the sums, per chunk of the shard, gathered in chunk order over the ranks.
  const int64_t chunks = (L.shard + kNormChunk - 1) / kNormChunk;
  std::vector<double> partial(static_cast<size_t>(chunks * world), 0.0);
  double* mine = partial.data() + rank * chunks;  // chunks past the shard's end stay 0
  if (end > begin) x.op->sum_squares_chunks(x, grads + begin, end - begin, kNormChunk, mine);
  comm.all_gather(mine, partial.data(), chunks, CommType::F64);
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
  if (world > 1) comm.all_gather(params + L.shard * rank, params, L.shard, CommType::F32);
  return result;
}

}  // namespace tk
