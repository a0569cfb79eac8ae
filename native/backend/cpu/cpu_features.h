// CPU feature detection and the choice of kernel ISA.
// Why: one binary must run on any x86-64 CPU and still use AVX-512 (or AMX) where present, so ISA
// variants are compiled as separate target-attributed functions and picked here at run time,
// never via a global -march=native.
#pragma once
#include <string>

namespace tk {

// Ordered: a higher level implies the lower ones are usable too.
enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2, Avx512Bf16 = 3, Amx = 4 };

struct CpuFeatures {
  bool avx2 = false;         // AVX2 + FMA3, with the OS saving YMM state
  bool avx512f = false;      // AVX-512 F/BW/VL/DQ, with the OS saving ZMM state
  bool avx512_bf16 = false;  // AVX512_BF16 (vdpbf16ps)
  bool amx_bf16 = false;     // AMX-TILE + AMX-BF16, and Linux granted the tile-data permission
  bool amx_permission_denied = false;  // CPU has AMX but arch_prctl refused it
  // TUNEKIT_EMULATE_AMX=1 on a CPU with AVX512_BF16 but no AMX: amx_bf16 is set and the AMX GEMM
  // runs with its tile instructions emulated in C (slow), so tests cover its packing everywhere.
  bool amx_emulated = false;
  int logical_cores = 1;
  std::string vendor;
};

// Detected once per process (CPUID is immutable); also requests AMX permission on Linux.
const CpuFeatures& cpu_features();

Isa best_isa(const CpuFeatures& f);
const char* isa_name(Isa isa);
// Parses "scalar" | "avx2" | "avx512" | "avx512bf16" | "amx"; returns false if unknown.
bool parse_isa(const std::string& name, Isa* out);

}  // namespace tk
