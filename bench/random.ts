// Seeded random data for the tests and the benches (test/helpers.ts re-exports these), so that a
// failure or a figure reproduces; the generator is generation's own (lib/random.ts).

import { rng } from '../lib/random.js';

export { rng };

/** n values uniform in [-1, 1). */
export function randomValues(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r() * 2 - 1;
  return out;
}
