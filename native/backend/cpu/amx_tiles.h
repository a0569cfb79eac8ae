// AMX tile configuration shared by the AMX GEMM kernel and the tile-peak measurement: palette 1,
// tiles tmm0-7 all 16 rows x 64 bytes. Written as inline assembly: GCC's _tile_loadconfig tells
// the compiler it reads 8 bytes of the 64-byte configuration, so the stores filling the rest may
// be dropped. The assembler knows AMX; no target flag is needed. Call only where
// cpu_features().amx_bf16 holds (not emulated): on other CPUs these instructions fault.
#pragma once
#include <cstdint>

namespace tk {

struct alignas(64) AmxTileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};
static_assert(sizeof(AmxTileConfig) == 64, "ldtilecfg reads 64 bytes");

// Per thread, before its first tile instruction.
inline void amx_configure_tiles() {
  const AmxTileConfig cfg;
  __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
}

// Returns the thread's tile state to its initial (unsaved) form.
inline void amx_release_tiles() { __asm__ volatile("tilerelease" ::); }

}  // namespace tk
