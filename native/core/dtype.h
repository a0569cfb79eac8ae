// Element types a tensor can hold.
// Why one enum for all: safetensors, GGUF and the kernels all name dtypes; converting between
// their spellings happens at the edges (TypeScript) and the core sees only this.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace tk {

enum class Dtype : int { F32 = 0, BF16 = 1, F16 = 2, I32 = 3, U8 = 4 };

inline size_t dtype_size(Dtype d) {
  switch (d) {
    case Dtype::F32: return 4;
    case Dtype::BF16: return 2;
    case Dtype::F16: return 2;
    case Dtype::I32: return 4;
    case Dtype::U8: return 1;
  }
  return 0;
}

// Lower-case names as TypeScript spells them ('f32', 'bf16', ...).
inline const char* dtype_name(Dtype d) {
  switch (d) {
    case Dtype::F32: return "f32";
    case Dtype::BF16: return "bf16";
    case Dtype::F16: return "f16";
    case Dtype::I32: return "i32";
    case Dtype::U8: return "u8";
  }
  return "?";
}

inline bool parse_dtype(const std::string& s, Dtype* out) {
  for (Dtype d : {Dtype::F32, Dtype::BF16, Dtype::F16, Dtype::I32, Dtype::U8}) {
    if (s == dtype_name(d)) {
      *out = d;
      return true;
    }
  }
  return false;
}

}  // namespace tk
