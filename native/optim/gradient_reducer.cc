#include "gradient_reducer.h"

#include <algorithm>
#include <chrono>

#include "../core/error.h"

namespace tk {

GradientReducer::GradientReducer(Comm& comm, const ShardLayout& l, const std::vector<GradientGroup>& groups, float* grads,
                                 Backend& backend)
    : comm_(comm), grads_(grads), backend_(backend), groups_(groups) {
  // The layout cut at every group and shard boundary, top down.
  std::vector<int64_t> cuts = {0, l.size};
  for (const GradientGroup& g : groups) cuts.push_back(std::clamp<int64_t>(g.offset, 0, l.size)), cuts.push_back(std::clamp<int64_t>(g.offset + g.length, 0, l.size));
  for (int r = 1; r < l.world; ++r) cuts.push_back(l.begin(r));
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  for (size_t i = cuts.size() - 1; i-- > 0;) {
    const int64_t a = cuts[i], b = cuts[i + 1];
    if (b <= a) continue;
    int owner = static_cast<int>(std::min<int64_t>(a / std::max<int64_t>(l.shard, 1), l.world - 1));
    pieces_.push_back({a, b - a, owner});
  }
  worker_ = std::thread([this] { run(); });
}

GradientReducer::~GradientReducer() {
  // A backward that threw still makes every reduction the other ranks wait in (the step is then
  // given up by all of them together).
  if (!finished_) try {
      finish();
    } catch (...) {
    }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void GradientReducer::group_done(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const GradientGroup& g : groups_) {
    if (g.name != name) continue;
    for (Piece& p : pieces_)
      if (p.offset >= g.offset && p.offset + p.length <= g.offset + g.length) p.declared = true;
  }
  post_ready();
  cv_.notify_all();
}

void GradientReducer::post_ready() {
  while (posted_ < pieces_.size() && pieces_[posted_].declared) ++posted_;
}

void GradientReducer::finish() {
  std::unique_lock<std::mutex> lock(mutex_);
  finished_ = true;
  for (Piece& p : pieces_) p.declared = true;
  post_ready();
  cv_.notify_all();
  cv_.wait(lock, [&] { return done_ == pieces_.size() || failure_; });
  if (failure_) std::rethrow_exception(failure_);
}

void GradientReducer::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || done_ < posted_; });
    if (done_ >= posted_) return;  // stopping with nothing left to reduce
    const Piece p = pieces_[done_];
    lock.unlock();
    try {
      const auto t0 = std::chrono::steady_clock::now();
      comm_.reduce_sum(grads_ + p.offset, p.length, CommType::F32, p.owner);
      seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      bytes_ += static_cast<double>(p.length) * sizeof(float) * (comm_.world() - 1) / comm_.world();
      if (p.owner != comm_.rank()) backend_.discard(grads_ + p.offset, static_cast<size_t>(p.length) * sizeof(float));
    } catch (...) {
      lock.lock();
      failure_ = std::current_exception();
      cv_.notify_all();
      return;
    }
    lock.lock();
    ++done_;
    cv_.notify_all();
  }
}

}  // namespace tk
