#include "weight_panels.h"
#include "kernels.h"

namespace tk {
namespace cpu {

const GemmPanels* WeightPanelCache::get(const WeightView& w, bool trans, Isa isa, ThreadPool& pool) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = panels_[{w.data, trans}];
  if (!slot) {
    slot = gemm_pack_panels(w, trans, isa, pool);
    if (!slot) {
      panels_.erase({w.data, trans});
      return nullptr;
    }
    bytes_ += slot->bytes;
  }
  return slot.get();
}

size_t WeightPanelCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

}  // namespace cpu
}  // namespace tk
