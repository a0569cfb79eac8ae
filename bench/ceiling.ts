// The bf16 products' ceiling, the one the gemm, step and scale suites divide by. Why here: the
// three suites must agree on which unit runs a bf16 product on this CPU — AMX tiles where the ISA
// is amx, vdpbf16ps where it has AVX512_BF16, and otherwise fp32 FMAs on bf16-rounded operands
// (ops/gemm.h), whose ceiling is the fp32 FMA peak. Dividing by a 0 bf16 peak on an
// AVX2-only CPU made every share "Infinity%".
import { measureLimit, type RuntimeInfo } from '../lib/index.js';

export interface Ceiling {
  gflops: number;
  /** What ran the products, for the suite's notes. */
  unit: string;
  /** The bf16 kernel reads the frozen weights' cached bf16 panels (all but the scalar and the AVX-512F one). */
  keepsPanels: boolean;
}

// A peak is the best the unit does: the best of three runs, because on a shared host one run can
// land in a slow second (one scale run measured 172 GFLOP/s where the runs beside it gave 204,
// and every share of its table read 15 points high).
async function bestOf3(kind: Parameters<typeof measureLimit>[0], seconds: number): Promise<number> {
  let best = 0;
  for (let i = 0; i < 3; i++) best = Math.max(best, await measureLimit(kind, seconds));
  return best;
}

export async function bf16Ceiling(info: RuntimeInfo, seconds = 1.0): Promise<Ceiling> {
  if (info.isa === 'amx') return { gflops: await bestOf3('amx', seconds), unit: 'AMX tiles', keepsPanels: true };
  const dot = info.isa === 'avx512bf16' ? await bestOf3('bf16', seconds) : 0;
  if (dot > 0) return { gflops: dot, unit: 'vdpbf16ps', keepsPanels: true };
  const how = info.isa === 'avx2' ? 'the AVX2 kernel widens bf16-pair panels to fp32' : 'the fp32 kernel on rounded operands';
  return { gflops: await bestOf3('fp32', seconds), unit: `fp32 FMA (${info.isa}: no bf16 dot product; ${how})`, keepsPanels: info.isa === 'avx2' };
}
