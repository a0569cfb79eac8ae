// The bf16 GEMM panels of a model's frozen weights (ops/gemm.h, GemmPanels), packed on first use
// and kept for the model's lifetime: 2 bytes per weight for each orientation a step uses (the
// forward's Wᵀ, the backward's W). Keyed by the matrix's storage, which never changes under a
// model (full fine-tuning takes no panels: its weights change every step).
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "cpu_features.h"
#include "thread_pool.h"
#include "../../ops/gemm.h"

namespace tk {
namespace cpu {

class WeightPanelCache {
 public:
  WeightPanelCache() = default;
  // A copied model state starts with no panels (its weights may be pointed elsewhere).
  WeightPanelCache(const WeightPanelCache&) {}
  WeightPanelCache& operator=(const WeightPanelCache&) = delete;
  // Panels of Wᵀ (trans) or W for the bf16 kernel of `isa`, packed now if not yet; null when that
  // kernel takes none. Safe to call from several threads.
  const GemmPanels* get(const WeightView& w, bool trans, Isa isa, ThreadPool& pool);
  size_t bytes() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<const void*, bool>, std::unique_ptr<GemmPanels>> panels_;
  size_t bytes_ = 0;
};

}  // namespace cpu
}  // namespace tk
