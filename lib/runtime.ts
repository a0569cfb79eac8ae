// Runtime information and settings: which ISA the kernels use, how many threads.
import { z } from 'zod';
import type { RuntimeOptions } from './option-types.js';
import { awaitNative, callNative } from './errors.js';
import { native, type Isa, type NativeCudaInfo, type NativeRuntimeInfo } from './native.js';
import { parseOptions, type Same } from './validate.js';

export type { Isa };
export type { NativeRuntimeInfo as RuntimeInfo, NativeCudaInfo as CudaInfo };

/** The ISA in use, the CPU's features, the thread count and how the addon was built. */
export function runtimeInfo(): NativeRuntimeInfo {
  return callNative(() => native.runtimeInfo());
}

export const RuntimeOptionsSchema = z
  .object({
    threads: z.number().int().min(1).max(1024).optional().describe('Worker threads for kernels (default: one per logical core, or TUNEKIT_THREADS)'),
    isa: z
      .enum(['scalar', 'avx2', 'avx512', 'avx512bf16', 'amx'])
      .optional()
      .describe('Kernel instruction set (default: the best the CPU supports, or TUNEKIT_ISA); must be supported by this CPU'),
  })
  .strict();
export type { RuntimeOptions };
// The schema accepts exactly the documented type (a compile-time check).
const schemaMatchesType: Same<z.input<typeof RuntimeOptionsSchema>, RuntimeOptions> = true;
void schemaMatchesType;

/** Changes threads or ISA for calls started from now on. */
export function setRuntimeOptions(options: RuntimeOptions): void {
  const parsed = parseOptions(RuntimeOptionsSchema, options, 'setRuntimeOptions');
  callNative(() => native.setRuntimeOptions(parsed));
}

/** Sustained fp32 FMA throughput (GFLOP/s) of the runtime's threads with its ISA: the GEMM ceiling. */
export function measureFmaPeak(seconds = 0.5): Promise<number> {
  return measureLimit('fp32', seconds);
}

/**
 * The machine's ceilings on the runtime's threads and ISA, measured: 'fp32' FMA, 'bf16'
 * (vdpbf16ps; 0 without AVX512_BF16) and 'amx' (TDPBF16PS tiles; 0 unless the ISA in use is amx on real tiles)
 * throughput in GFLOP/s, 'memory' read bandwidth in GB/s.
 */
export async function measureLimit(kind: 'fp32' | 'bf16' | 'amx' | 'memory', seconds = 0.5): Promise<number> {
  const k = parseOptions(z.enum(['fp32', 'bf16', 'amx', 'memory']), kind, 'kind');
  const s = parseOptions(z.number().gt(0).max(60), seconds, 'seconds');
  return awaitNative(() => native.measureLimit(k, s));
}
