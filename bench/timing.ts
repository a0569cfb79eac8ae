// Timing our side: a warm-up, then `reps` timed calls, each repeating the work enough times
// (inside native code where possible) that the Promise round trip is noise; the median is kept.
import { median } from './table.js';

export async function medianSeconds(run: (repeat: number) => Promise<unknown>, reps: number, estimate: number): Promise<number> {
  const repeat = Math.max(1, Math.round(0.05 / Math.max(estimate, 1e-6)));
  await run(1);
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    await run(repeat);
    times.push(Number(process.hrtime.bigint() - t0) / 1e9 / repeat);
  }
  return median(times);
}

/** The projection shapes (in, out) of the models the suites use, and their names. */
export const MODELS: [string, [number, number][]][] = [
  ['smollm2-135m', [[576, 576], [576, 192], [576, 1536], [1536, 576]]],
  ['llama-3.2-1b', [[2048, 2048], [2048, 512], [2048, 8192], [8192, 2048]]],
];
export const TOKENS = 512;
