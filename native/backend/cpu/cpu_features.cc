#include "cpu_features.h"

#include <cstdlib>
#include <cstring>
#include <thread>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define TK_X86 1
#endif
#if defined(__linux__) && defined(TK_X86)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace tk {
namespace {

#ifdef TK_X86
void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) { __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]); }

unsigned long long xgetbv0() {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

// Linux keeps AMX tile data disabled until a process asks for it (kernel >= 5.16).
bool request_amx_permission() {
#if defined(__linux__)
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned r[4];
  cpuid(0, 0, r);
  unsigned max_leaf = r[0];
  char vendor[13];
  std::memcpy(vendor, &r[1], 4);
  std::memcpy(vendor + 4, &r[3], 4);
  std::memcpy(vendor + 8, &r[2], 4);
  vendor[12] = 0;
  f.vendor = vendor;
  if (max_leaf < 7) return f;

  cpuid(1, 0, r);
  const bool fma = r[2] & (1u << 12);
  const bool osxsave = r[2] & (1u << 27);
  if (!osxsave) return f;
  const unsigned long long xcr0 = xgetbv0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;
  const bool os_tiles = (xcr0 & (3ull << 17)) == (3ull << 17);

  cpuid(7, 0, r);
  const unsigned ebx7 = r[1], edx7 = r[3];
  const unsigned eax7_1 = (r[0] >= 1) ? (cpuid(7, 1, r), r[0]) : 0;
  const bool avx2 = ebx7 & (1u << 5);
  const bool avx512f = ebx7 & (1u << 16), avx512dq = ebx7 & (1u << 17);
  const bool avx512bw = ebx7 & (1u << 30), avx512vl = ebx7 & (1u << 31);
  const bool amx_bf16 = edx7 & (1u << 22), amx_tile = edx7 & (1u << 24);

  f.avx2 = avx2 && fma && os_ymm;
  f.avx512f = f.avx2 && avx512f && avx512dq && avx512bw && avx512vl && os_zmm;
  f.avx512_bf16 = f.avx512f && (eax7_1 & (1u << 5));
  if (f.avx512f && amx_bf16 && amx_tile && os_tiles) {
    f.amx_bf16 = request_amx_permission();
    f.amx_permission_denied = !f.amx_bf16;
  }
  return f;
}
#else
CpuFeatures detect() { return CpuFeatures{}; }
#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f = detect();
    const char* emulate = std::getenv("TUNEKIT_EMULATE_AMX");
    if (emulate && std::strcmp(emulate, "1") == 0 && f.avx512_bf16 && !f.amx_bf16) f.amx_bf16 = f.amx_emulated = true;
    unsigned n = std::thread::hardware_concurrency();
    f.logical_cores = n > 0 ? static_cast<int>(n) : 1;
    return f;
  }();
  return features;
}

Isa best_isa(const CpuFeatures& f) {
  if (f.amx_bf16) return Isa::Amx;
  if (f.avx512_bf16) return Isa::Avx512Bf16;
  if (f.avx512f) return Isa::Avx512;
  if (f.avx2) return Isa::Avx2;
  return Isa::Scalar;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Bf16: return "avx512bf16";
    case Isa::Amx: return "amx";
  }
  return "scalar";
}

bool parse_isa(const std::string& name, Isa* out) {
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16, Isa::Amx}) {
    if (name == isa_name(isa)) {
      *out = isa;
      return true;
    }
  }
  return false;
}

}  // namespace tk
