// Fused LoRA linear: forward and backward against an fp64 reference written here, gradients by
// finite differences (with dropout, whose mask only the library knows), compact frozen weights,
// bf16 mode, rsLoRA scaling and bad input.
import { describe, expect, it } from 'vitest';
import { afterAll } from 'vitest';
import { loraLinearBackward, loraLinearForward, loraScale, quantizeWeights, runtimeInfo, setRuntimeOptions, Tensor, type Isa, type LoraAdapter, type MatrixOperand } from '../lib/index.js';
import { randomValues } from './helpers.js';

type Mat = { rows: number; cols: number; v: ArrayLike<number> };
const mat = (rows: number, cols: number, v: ArrayLike<number>): Mat => ({ rows, cols, v });
/** fp64 C = op(A)·op(B). */
function mm(a: Mat, b: Mat, ta = false, tb = false): Mat {
  const m = ta ? a.cols : a.rows, k = ta ? a.rows : a.cols, n = tb ? b.rows : b.cols;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (ta ? a.v[p * a.cols + i]! : a.v[i * a.cols + p]!) * (tb ? b.v[j * b.cols + p]! : b.v[p * b.cols + j]!);
      out[i * n + j] = s;
    }
  return mat(m, n, out);
}
const add = (a: Mat, b: Mat, s = 1) => mat(a.rows, a.cols, Array.from(a.v, (x, i) => x + s * b.v[i]!));
const scaled = (a: Mat, s: number) => mat(a.rows, a.cols, Array.from(a.v, (x) => x * s));

function expectNear(ours: ArrayLike<number>, ref: ArrayLike<number>, tol: number, label: string) {
  let worst = 0, scale = 0;
  for (let i = 0; i < ref.length; i++) {
    worst = Math.max(worst, Math.abs(ours[i]! - ref[i]!));
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  expect(worst / scale, label).toBeLessThan(tol);
}

function setup(m: number, inp: number, out: number, r: number, seed: number) {
  const xv = randomValues(m * inp, seed), wv = randomValues(out * inp, seed + 1);
  const av = randomValues(r * inp, seed + 2), bv = randomValues(out * r, seed + 3), dyv = randomValues(m * out, seed + 4);
  const adapter: LoraAdapter = { a: Tensor.from('f32', [r, inp], av), b: Tensor.from('f32', [out, r], bv), alpha: 16 };
  return { xv, wv, av, bv, dyv, adapter, x: Tensor.from('f32', [m, inp], xv), w: Tensor.from('f32', [out, inp], wv), dy: Tensor.from('f32', [m, out], dyv) };
}

/** fp64 reference without dropout. */
function reference(m: number, inp: number, out: number, r: number, s: number, d: ReturnType<typeof setup>, wv: ArrayLike<number>) {
  const X = mat(m, inp, d.xv), W = mat(out, inp, wv), A = mat(r, inp, d.av), B = mat(out, r, d.bv), dY = mat(m, out, d.dyv);
  const T = mm(X, A, false, true);
  const Y = add(mm(X, W, false, true), mm(scaled(T, s), B, false, true));
  const dT = scaled(mm(dY, B), s);
  return { Y, dB: scaled(mm(dY, T, true, false), s), dA: mm(dT, X, true, false), dX: add(mm(dY, W), mm(dT, A)) };
}

const info = runtimeInfo();
const order: Isa[] = ['scalar', 'avx2', 'avx512', 'avx512bf16', 'amx'];
const isas = order.slice(0, order.indexOf(info.detectedIsa) + 1);
afterAll(() => setRuntimeOptions({ isa: info.isa }));

describe('LoRA linear', () => {
  it.each(isas.flatMap((isa) => [8, 64].map((r) => [isa, r] as const)))('forward and backward match fp64 on %s (r = %i)', async (isa, r) => {
    setRuntimeOptions({ isa });
    const [m, inp, out] = [70, 96, 80];
    const d = setup(m, inp, out, r, r);
    const s = loraScale(16, r);
    const ref = reference(m, inp, out, r, s, d, d.wv);
    const { y, saved } = await loraLinearForward(d.x, d.w, d.adapter);
    expectNear(y.data, ref.Y.v, 1e-5, 'y');
    const { dx, da, db } = await loraLinearBackward(d.dy, d.x, d.w, d.adapter, saved);
    expectNear(dx!.data, ref.dX.v, 1e-5, 'dX');
    expectNear(da.data, ref.dA.v, 1e-5, 'dA');
    expectNear(db.data, ref.dB.v, 1e-5, 'dB');
    setRuntimeOptions({ isa: info.isa });
  });

  it('runs in bf16 within bf16 tolerance, and with NF4 and Q4_0 frozen weights', async () => {
    const [m, inp, out, r] = [33, 64, 48, 8];
    const d = setup(m, inp, out, r, 40);
    const s = loraScale(16, r);
    const ref = reference(m, inp, out, r, s, d, d.wv);
    const { y, saved } = await loraLinearForward(d.x, d.w, d.adapter, { bf16: true });
    expectNear(y.data, ref.Y.v, 2e-2, 'bf16 y');
    const g = await loraLinearBackward(d.dy, d.x, d.w, d.adapter, saved, { bf16: true });
    expectNear(g.dx!.data, ref.dX.v, 2e-2, 'bf16 dX');
    expectNear(g.da.data, ref.dA.v, 2e-2, 'bf16 dA');
    for (const format of ['nf4', 'q4_0'] as const) {
      const wq = await quantizeWeights(d.w, { format });
      const wd = (await wq.dequantize()).data;
      const rq = reference(m, inp, out, r, s, d, wd);
      const f = await loraLinearForward(d.x, wq, d.adapter);
      expectNear(f.y.data, rq.Y.v, 1e-5, `${format} y`);
      const b = await loraLinearBackward(d.dy, d.x, wq, d.adapter, f.saved);
      expectNear(b.dx!.data, rq.dX.v, 1e-5, `${format} dX`);
      expectNear(b.da.data, rq.dA.v, 1e-5, `${format} dA`);
    }
  });

  it('gradients match finite differences, with dropout', async () => {
    const [m, inp, out, r] = [5, 7, 6, 3];
    const d = setup(m, inp, out, r, 77);
    const options = { dropout: 0.3, seed: 1234 };
    // L = sum(dY ⊙ Y) is linear in each of X, A, B, so central differences are exact up to rounding.
    const loss = async (x: Tensor<'f32'>, w: MatrixOperand, adapter: LoraAdapter) => {
      const { y } = await loraLinearForward(x, w, adapter, options);
      let s = 0;
      for (let i = 0; i < y.numel; i++) s += y.data[i]! * d.dyv[i]!;
      return s;
    };
    const { saved } = await loraLinearForward(d.x, d.w, d.adapter, options);
    const g = await loraLinearBackward(d.dy, d.x, d.w, d.adapter, saved, options);
    const eps = 1e-2;
    const check = async (t: Tensor<'f32'>, grad: Tensor<'f32'>, name: string) => {
      for (let i = 0; i < t.numel; i++) {
        const keep = t.data[i]!;
        t.data[i] = keep + eps;
        const up = await loss(d.x, d.w, d.adapter);
        t.data[i] = keep - eps;
        const down = await loss(d.x, d.w, d.adapter);
        t.data[i] = keep;
        expect(Math.abs((up - down) / (2 * eps) - grad.data[i]!), `${name}[${i}]`).toBeLessThan(2e-3 * (1 + Math.abs(grad.data[i]!)));
      }
    };
    await check(d.adapter.a, g.da, 'dA');
    await check(d.adapter.b, g.db, 'dB');
    await check(d.x, g.dx!, 'dX');
    // The mask really drops about 30% of the inputs: with dropout, T differs from x·Aᵀ.
    const { saved: plain } = await loraLinearForward(d.x, d.w, d.adapter);
    expect([...saved.t.data]).not.toEqual([...plain.t.data]);
  });

  it('skips the input gradient when asked', async () => {
    const [m, inp, out, r] = [6, 16, 12, 4];
    const d = setup(m, inp, out, r, 21);
    const { saved } = await loraLinearForward(d.x, d.w, d.adapter);
    const full = await loraLinearBackward(d.dy, d.x, d.w, d.adapter, saved);
    const partial = await loraLinearBackward(d.dy, d.x, d.w, d.adapter, saved, { inputGrad: false });
    expect(partial.dx).toBeNull();
    expect([...partial.da.data]).toEqual([...full.da.data]);
    expect([...partial.db.data]).toEqual([...full.db.data]);
  });

  it('scales by alpha / r, or alpha / sqrt(r) with rsLoRA', async () => {
    expect(loraScale(16, 8)).toBe(2);
    expect(loraScale(16, 64, true)).toBe(2);
    const [m, inp, out, r] = [4, 8, 4, 4];
    const d = setup(m, inp, out, r, 5);
    const plain = (await loraLinearForward(d.x, d.w, d.adapter)).y;
    const rs = (await loraLinearForward(d.x, d.w, { ...d.adapter, rslora: true })).y;
    const base = await loraLinearForward(d.x, d.w, { ...d.adapter, alpha: 0 });
    // y - base is linear in the scale: rsLoRA (16/2 = 8) gives twice plain LoRA's (16/4 = 4).
    for (let i = 0; i < plain.numel; i++) {
      expect(rs.data[i]! - base.y.data[i]!).toBeCloseTo(2 * (plain.data[i]! - base.y.data[i]!), 4);
    }
  });

  it('rejects mismatched shapes and bad options', async () => {
    const d = setup(4, 8, 6, 2, 9);
    await expect(loraLinearForward(d.x, d.w, { ...d.adapter, b: Tensor.zeros('f32', [5, 2]) })).rejects.toThrow('Expected lora B of shape [6, 2] but received [5, 2]');
    await expect(loraLinearForward(d.x, d.w, { ...d.adapter, a: Tensor.zeros('f32', [2, 7]) })).rejects.toThrow('Expected lora A of shape [r, 8] but received [2, 7]');
    await expect(loraLinearForward(d.x, Tensor.zeros('f32', [6, 9]), d.adapter)).rejects.toThrow(/Expected w of shape \[\*, 8\]/);
    await expect(loraLinearForward(d.x, d.w, d.adapter, { dropout: 1 })).rejects.toThrow('Expected number < 1 for dropout but received 1');
    await expect(loraLinearBackward(Tensor.zeros('f32', [4, 5]), d.x, d.w, d.adapter, { t: Tensor.zeros('f32', [4, 2]) })).rejects.toThrow(
      'Expected dy to be an f32 tensor of shape [4, 6] but received f32 [4, 5]',
    );
  });
});
