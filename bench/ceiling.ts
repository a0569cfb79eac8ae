// The bf16 products' ceiling, the one the gemm, step and scale suites divide by. Why here: the
// three suites must agree on which unit runs a bf16 product on this CPU — AMX tiles where the ISA
// is amx, vdpbf16ps where it has AVX512_BF16, and otherwise the fp32 FMA kernel on bf16-rounded
// operands (ops/gemm.h), whose ceiling is the fp32 FMA peak. Dividing by a 0 bf16 peak on an
// AVX2-only CPU made every share "Infinity%".
import { measureLimit, type RuntimeInfo } from '../lib/index.js';

export interface Ceiling {
  gflops: number;
  /** What ran the products, for the suite's notes. */
  unit: string;
  /** A bf16 dot-product unit ran them: only its kernels read the frozen weights' cached panels. */
  bf16Unit: boolean;
}

export async function bf16Ceiling(info: RuntimeInfo, seconds = 1.0): Promise<Ceiling> {
  if (info.isa === 'amx') return { gflops: await measureLimit('amx', seconds), unit: 'AMX tiles', bf16Unit: true };
  const dot = await measureLimit('bf16', seconds);
  if (dot > 0) return { gflops: dot, unit: 'vdpbf16ps', bf16Unit: true };
  return { gflops: await measureLimit('fp32', seconds), unit: `fp32 FMA (${info.isa}: no bf16 dot product, bf16 products run the fp32 kernel on rounded operands)`, bf16Unit: false };
}
