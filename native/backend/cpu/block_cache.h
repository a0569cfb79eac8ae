// A cache of large freed blocks, reused by the next allocation of the same size class.
// Why: a training step allocates about a gigabyte of activations in buffers of a few fixed sizes
// and frees them all; glibc serves such sizes with fresh mmaps, so every step paid ~250k page
// faults (and the kernel zeroing each page) again — a fifth of a SmolLM2 step. Keeping the blocks
// mapped removes that; sizes are rounded up to one of four steps per power of two so that steps of
// varying length still reuse blocks, and the cache empties when it holds more than a step needs.
#pragma once
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

namespace tk {

class BlockCache {
 public:
  static BlockCache& instance();
  void* get(size_t bytes);
  void put(void* p, size_t bytes);
  // Called at the end of a step: drops the cache when it holds far more than the step used.
  void end_step();
  void clear();
  size_t cached_bytes() const;
};

// std::allocator-compatible; blocks under 64 KiB go to malloc as usual.
template <class T>
struct CachedAllocator {
  using value_type = T;
  CachedAllocator() noexcept = default;
  template <class U>
  CachedAllocator(const CachedAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(BlockCache::instance().get(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { BlockCache::instance().put(p, n * sizeof(T)); }
  // Sizing a vector (Buf x(n), resize) default-initializes: floats stay unset instead of zeroed.
  // Every activation and gradient buffer of a step is written before it is read, and zero-filling
  // them (about two gigabytes per SmolLM2 step) cost 5% of the step. assign(n, 0.0f) still zeroes.
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <class U>
  bool operator==(const CachedAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const CachedAllocator<U>&) const noexcept { return false; }
};

}  // namespace tk
