// Seeded uniform numbers for weight initialization: splitmix64, the same stream on every machine.
#pragma once
#include <cstdint>

namespace tk {

// Fills out[0..count) with Uniform(-bound, bound), advancing `seed` (successive calls continue
// the stream, so the adapters of a model draw from one sequence).
inline void fill_uniform(float* out, int64_t count, float bound, uint64_t& seed) {
  for (int64_t i = 0; i < count; ++i) {
    uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    out[i] = (static_cast<float>(z >> 40) / 16777216.0f * 2.0f - 1.0f) * bound;
  }
}

}  // namespace tk
