// fp32 GEMM against an fp64 reference written here, on fresh random data, every element checked,
// on every ISA this CPU offers (scalar, avx2, avx512...) and for all four transposition modes.
import { afterAll, describe, expect, it } from 'vitest';
import { gemm, linearBackwardInput, linearBackwardWeight, linearForward, runtimeInfo, setRuntimeOptions, Tensor, TunekitError, type Isa } from '../lib/index.js';
import { randomValues } from './helpers.js';
import { gemmReference, worstBoundRatio, type Ref } from './reference.js';

/** Checks every element against the classic dot-product bound 2 (k + 2) u (|alpha| sum|a||b| + |beta c0|). */
function expectClose(c: Float32Array, ref: Ref, k: number, label: string) {
  const { ratio, at } = worstBoundRatio(c, ref, k);
  expect(ratio, `${label}: element ${at} = ${c[at]} vs ${ref.value[at]}`).toBeLessThanOrEqual(1);
}
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 7, 1], [7, 1, 1], [3, 5, 1], [1, 1, 300], [13, 17, 19], [37, 53, 29], [14, 32, 256],
  [15, 33, 257], [29, 31, 513], [100, 70, 300], [129, 257, 65], [61, 97, 1031], [256, 130, 600],
];
const MODES: [boolean, boolean][] = [[false, true], [false, false], [true, false], [true, true]];

const info = runtimeInfo();
const order: Isa[] = ['scalar', 'avx2', 'avx512', 'avx512bf16', 'amx'];
const isas = order.slice(0, order.indexOf(info.detectedIsa) + 1).filter((i) => i === 'scalar' || i === 'avx2' || i === 'avx512');

afterAll(() => setRuntimeOptions({ isa: info.isa, threads: info.threads }));

describe.each(isas)('gemm on %s', (isa) => {
  it.each(SHAPES)('m=%i n=%i k=%i, every mode, matches fp64', async (m, n, k) => {
    setRuntimeOptions({ isa, threads: 2 });
    let seed = m * 1_000_003 + n * 1009 + k;
    for (const [ta, tb] of MODES) {
      const av = randomValues(m * k, seed++), bv = randomValues(k * n, seed++);
      const a = Tensor.from('f32', ta ? [k, m] : [m, k], av);
      const b = Tensor.from('f32', tb ? [n, k] : [k, n], bv);
      const c = await gemm(a, b, { transposeA: ta, transposeB: tb });
      expect(c.shape).toEqual([m, n]);
      expectClose(c.data, gemmReference(av, bv, null, m, n, k, ta, tb, 1, 0), k, `${isa} ${m}x${n}x${k} ta=${ta} tb=${tb}`);
    }
  });

  it('accumulates into out with alpha and beta', async () => {
    setRuntimeOptions({ isa, threads: 2 });
    const [m, n, k] = [45, 67, 89];
    const av = randomValues(m * k, 1), bv = randomValues(k * n, 2), c0 = randomValues(m * n, 3);
    const out = Tensor.from('f32', [m, n], c0);
    await gemm(Tensor.from('f32', [m, k], av), Tensor.from('f32', [n, k], bv), { transposeB: true, out, alpha: -0.5, beta: 1.5 });
    expectClose(out.data, gemmReference(av, bv, c0, m, n, k, false, true, -0.5, 1.5), k, 'alpha/beta');
  });
});

describe('gemm', () => {
  it('gives bit-identical results for 1 and 2 threads', async () => {
    const [m, n, k] = [300, 500, 700];
    const a = Tensor.from('f32', [m, k], randomValues(m * k, 7)), b = Tensor.from('f32', [n, k], randomValues(n * k, 8));
    setRuntimeOptions({ threads: 1 });
    const one = await gemm(a, b, { transposeB: true });
    setRuntimeOptions({ threads: 2 });
    const two = await gemm(a, b, { transposeB: true });
    expect(Buffer.from(two.bytes).equals(Buffer.from(one.bytes))).toBe(true);
  });

  it('computes the three products of a linear layer', async () => {
    const [t, i, o] = [33, 40, 24];
    const xv = randomValues(t * i, 11), wv = randomValues(o * i, 12), dyv = randomValues(t * o, 13);
    const x = Tensor.from('f32', [t, i], xv), w = Tensor.from('f32', [o, i], wv), dy = Tensor.from('f32', [t, o], dyv);
    expectClose((await linearForward(x, w)).data, gemmReference(xv, wv, null, t, o, i, false, true, 1, 0), i, 'Y = X Wt');
    expectClose((await linearBackwardInput(dy, w)).data, gemmReference(dyv, wv, null, t, i, o, false, false, 1, 0), o, 'dX = dY W');
    expectClose((await linearBackwardWeight(dy, x)).data, gemmReference(dyv, xv, null, o, i, t, true, false, 1, 0), t, 'dW = dYt X');
  });

  it('matches the native fp64 reference path too', async () => {
    const [m, n, k] = [20, 30, 40];
    const av = randomValues(m * k, 21), bv = randomValues(k * n, 22);
    const c = await gemm(Tensor.from('f32', [m, k], av), Tensor.from('f32', [k, n], bv), { reference: true });
    expectClose(c.data, gemmReference(av, bv, null, m, n, k, false, false, 1, 0), k, 'reference');
  });

  it('handles k = 0 and empty outputs', async () => {
    const c = await gemm(Tensor.zeros('f32', [3, 0]), Tensor.zeros('f32', [0, 4]));
    expect([...c.data]).toEqual(new Array(12).fill(0));
    const e = await gemm(Tensor.zeros('f32', [0, 5]), Tensor.zeros('f32', [5, 4]));
    expect(e.shape).toEqual([0, 4]);
  });

  it('rejects mismatched shapes and dtypes with clear errors', async () => {
    const a = Tensor.zeros('f32', [3, 4]);
    await expect(gemm(a, Tensor.zeros('f32', [5, 6]))).rejects.toThrow(/inner dimensions.*\[3, 4\].*\[5, 6\]/);
    await expect(gemm(a, Tensor.zeros('i32', [4, 2]) as never)).rejects.toThrow(/2-D f32, bf16 or f16 tensor or Weights for b but received i32/);
    await expect(gemm(a, Tensor.zeros('f32', [4, 2]), { out: Tensor.zeros('f32', [2, 2]) })).rejects.toThrow(/out of shape \[3, 2\]/);
    await expect(gemm(a, Tensor.zeros('f32', [4, 2]), { repeat: 0 })).rejects.toBeInstanceOf(TunekitError);
  });
});
