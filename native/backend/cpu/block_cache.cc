#include "block_cache.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

namespace tk {
namespace {

// Below this, malloc's own free lists serve well; above it a step's buffers are refaulted each step
// (glibc maps them afresh or the step's malloc_trim hands their pages back).
constexpr size_t kMinCached = size_t{64} << 10;

// Rounds up to the next of four steps per power of two (at most 25% more).
size_t size_class(size_t bytes) {
  size_t p = 1;
  while (p * 2 <= bytes) p *= 2;
  const size_t step = p / 4;
  return (bytes + step - 1) / step * step;
}

struct State {
  std::mutex mutex;
  std::multimap<size_t, void*> free;  // size class -> blocks
  size_t cached = 0, live = 0, peak_live = 0;
};

State& state() {
  static State* s = new State();  // never destroyed: blocks may be freed during exit
  return *s;
}

}  // namespace

BlockCache& BlockCache::instance() {
  static BlockCache cache;
  return cache;
}

void* BlockCache::get(size_t bytes) {
  if (bytes < kMinCached) {  // 64-byte aligned like the cached blocks (the GEMM panels' aligned loads)
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + (bytes ? 0 : 64));
    if (!p) throw std::bad_alloc();
    return p;
  }
  const size_t cls = size_class(bytes);
  State& s = state();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.free.find(cls);
    if (it != s.free.end()) {
      void* p = it->second;
      s.free.erase(it);
      s.cached -= cls;
      s.live += cls;
      if (s.live > s.peak_live) s.peak_live = s.live;
      return p;
    }
    s.live += cls;
    if (s.live > s.peak_live) s.peak_live = s.live;
  }
  void* p = std::aligned_alloc(64, cls);
  if (!p) {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.live -= cls;
    throw std::bad_alloc();
  }
  return p;
}

void BlockCache::put(void* p, size_t bytes) {
  if (!p) return;
  if (bytes < kMinCached) return std::free(p);
  const size_t cls = size_class(bytes);
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.free.emplace(cls, p);
  s.cached += cls;
  s.live -= cls;
}

void BlockCache::end_step() {
  State& s = state();
  bool drop = false;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    drop = s.cached > 2 * s.peak_live + (size_t{64} << 20);
    s.peak_live = s.live;
  }
  if (drop) clear();
}

void BlockCache::clear() {
  State& s = state();
  std::multimap<size_t, void*> blocks;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    blocks.swap(s.free);
    s.cached = 0;
  }
  for (auto& [cls, p] : blocks) std::free(p);
}

size_t BlockCache::cached_bytes() const {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.cached;
}

}  // namespace tk
