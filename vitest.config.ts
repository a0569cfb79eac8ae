import { defineConfig } from 'vitest/config';

// The kernel tests run a second time with the AMX GEMM's tile instructions emulated
// (TUNEKIT_EMULATE_AMX=1; native/backend/cpu/cpu_features.h), so its packing, tails and layouts are
// checked on CPUs without AMX too. Where the CPU has no AVX512_BF16 the flag does nothing.
const amxEmulated = ['test/gemm.test.ts', 'test/weights.test.ts', 'test/lora.test.ts', 'test/ops.test.ts', 'test/hf-llama.test.ts'];

export default defineConfig({
  test: {
    // Native addons are safest in child processes; tests that spawn builds need time.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 600_000,
    // Fetches the real model the end-to-end tests need when it is missing (or says why not).
    globalSetup: ['test/setup/fetch-model.ts'],
    projects: [
      { extends: true, test: { name: 'default', include: ['test/**/*.test.ts'] } },
      { extends: true, test: { name: 'amx-emulated', include: amxEmulated, env: { TUNEKIT_EMULATE_AMX: '1' } } },
    ],
  },
});
