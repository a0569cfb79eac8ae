// GGUF K-quants (Q2_K..Q6_K), Q5_0 / Q5_1 and IQ4_NL / IQ4_XS, the formats of the Q4_K_M / Q5_K_M / Q6_K / Q3_K_M / IQ4_XS /
// Q2_K files users download: a file written by gguf-py (test/reference/make_kquant_fixtures.py,
// random blocks so that every bit of every field counts) read with our reader and decoded element
// for element as gguf-py decodes it; the GEMM with each as its frozen B operand (decoded inside the
// packing step) against fp64 over the decoded weights on every ISA; sizes checked with clear errors;
// and a tiny Llama GGUF holding the mix (test/reference/make_tiny_kquant_gguf.py) whose logits must
// be transformers' GGUF loader's, and which trains with LoRA and as a QLoRA base.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gemm, loadModel, openGguf, openSafetensors, quantizeWeights, runtimeInfo, setRuntimeOptions, Tensor, Weights, type Isa } from '../lib/index.js';
import { randomValues } from './helpers.js';
import { gemmReference, worstBoundRatio } from './reference.js';

const fixtures = fileURLToPath(new URL('./reference/fixtures/gguf/', import.meta.url));
const FORMATS = ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'q5_0', 'q5_1', 'iq4_nl', 'iq4_xs'] as const;

async function fixtureWeights(): Promise<Map<string, { w: Weights; want: Float32Array }>> {
  const g = await openGguf(join(fixtures, 'kquants.gguf'));
  const expected = await openSafetensors(join(fixtures, 'kquants.expected.safetensors'));
  const out = new Map<string, { w: Weights; want: Float32Array }>();
  try {
    for (const name of FORMATS) {
      const w = await g.read(name);
      if (!(w instanceof Weights)) throw new Error(`${name} was not read as Weights`);
      out.set(name, { w, want: ((await expected.read(name)) as Tensor<'f32'>).data });
    }
  } finally {
    await g.close();
    await expected.close();
  }
  return out;
}

const info = runtimeInfo();
const order: Isa[] = ['scalar', 'avx2', 'avx512', 'avx512bf16', 'amx'];
const isas = order.slice(0, order.indexOf(info.detectedIsa) + 1);
afterAll(() => setRuntimeOptions({ isa: info.isa, threads: info.threads }));

describe('K-quants and Q5_0 / Q5_1 from a file gguf-py wrote', () => {
  // Each ISA's decoders (the forced ISA bounds them): scalar, AVX2, AVX-512.
  it.each(isas.flatMap((isa) => FORMATS.map((name) => [name, isa] as const)))('%s decodes to the values gguf-py gives, bit for bit (%s)', async (name, isa) => {
    setRuntimeOptions({ isa });
    const { w, want } = (await fixtureWeights()).get(name)!;
    expect(w.format).toBe(name);
    expect(w.shape).toEqual([3, 512]);
    const got = (await w.dequantize()).data;
    expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength))).toBe(true);
  });

  it('re-quantizes to NF4 (a QLoRA base from a K-quant file) within NF4\'s step', async () => {
    const { w } = (await fixtureWeights()).get('q4_k')!;
    const dense = await w.dequantize();
    const nf4 = await quantizeWeights(dense, { format: 'nf4' });
    const back = (await nf4.dequantize()).data;
    let worst = 0;
    for (let b = 0; b < back.length; b += 64) {
      const amax = Math.max(...Array.from(dense.data.subarray(b, b + 64), Math.abs));
      for (let i = b; i < b + 64; i++) worst = Math.max(worst, Math.abs(back[i]! - dense.data[i]!) / amax);
    }
    expect(worst).toBeLessThan(0.17); // half the widest gap between NF4 codes (0.3039 / 2), plus rounding
  });

  it('refuses a row that is not a whole number of super-blocks, and blocks of the wrong size, naming what was expected', () => {
    expect(() => Weights.fromParts({ format: 'q4_k', shape: [2, 576], data: Tensor.zeros('u8', [2 * 3 * 144]) })).toThrow(/Expected a column count divisible by 256 for q4_k but received 576/);
    expect(() => Weights.fromParts({ format: 'q6_k', shape: [2, 512], data: Tensor.zeros('u8', [100]) })).toThrow(/Expected blocks to be u8 with 840 elements but received u8 \[100\]/);
    expect(() => Weights.fromParts({ format: 'q5_0', shape: [1, 48], data: Tensor.zeros('u8', [22]) })).toThrow(/divisible by 32 for q5_0/);
  });
});

describe.each(isas)('GEMM with K-quant weights on %s', (isa) => {
  it.each(FORMATS)('%s: Y = X·deq(W)ᵀ and dX = dY·deq(W) match fp64 over the decoded weights (fp32), and the dense matrix\'s GEMM (bf16)', async (name) => {
    setRuntimeOptions({ isa, threads: 2 });
    const { w, want } = (await fixtureWeights()).get(name)!;
    const [m, out, inp] = [37, 3, 512];
    const xv = randomValues(m * inp, 6), dyv = randomValues(m * out, 7);
    const x = Tensor.from('f32', [m, inp], xv), dy = Tensor.from('f32', [m, out], dyv), dense = Tensor.from('f32', [out, inp], want);
    const y = await gemm(x, w, { transposeB: true });
    const ry = worstBoundRatio(y.data, gemmReference(xv, want, null, m, out, inp, false, true), inp);
    expect(ry.ratio, `forward element ${ry.at}`).toBeLessThanOrEqual(1);
    const dx = await gemm(dy, w);
    const rx = worstBoundRatio(dx.data, gemmReference(dyv, want, null, m, inp, out, false, false), out);
    expect(rx.ratio, `backward element ${rx.at}`).toBeLessThanOrEqual(1);
    // bf16: the decoded values rounded to bf16 in the packing, as the dense matrix's are.
    for (const [got, ref] of [
      [await gemm(x, w, { transposeB: true, bf16: true }), await gemm(x, dense, { transposeB: true, bf16: true })],
      [await gemm(dy, w, { bf16: true }), await gemm(dy, dense, { bf16: true })],
    ] as const) {
      const scale = Math.max(...Array.from(ref.data, Math.abs));
      got.data.forEach((v, i) => expect(Math.abs(v - ref.data[i]!) / scale, `bf16 element ${i}`).toBeLessThan(1e-6));
    }
  });
});

describe('a Llama GGUF whose matrices are K-quants (the mix of a Q4_K_M / Q5_K_M file)', () => {
  const dir = fileURLToPath(new URL('./reference/fixtures/tiny-kquant/', import.meta.url));

  it('gives the logits transformers\' GGUF loader gives on the same file, and trains (LoRA, and QLoRA re-quantized from it)', async () => {
    const r = await openSafetensors(join(dir, 'expected.safetensors'));
    const ids = [...(await r.read('ids')).data] as number[], want = ((await r.read('logits')) as Tensor<'f32'>).data;
    await r.close();
    const m = await loadModel(join(dir, 'tiny-kquant.gguf'));
    const got = (await m.logits(ids)).data;
    let num = 0, den = 0;
    got.forEach((v, i) => { num += (v - want[i]!) ** 2; den += want[i]! ** 2; });
    expect(Math.sqrt(num / den)).toBeLessThan(1e-5);
    for (const quantize of [undefined, 'nf4'] as const) {
      const t = await loadModel(join(dir, 'tiny-kquant.gguf'), quantize ? { quantize } : {});
      t.addLora({ r: 4, alpha: 8, seed: 3 });
      const batch = { inputIds: [ids], labels: [ids] };
      const before = (await t.evaluate(batch)).loss;
      for (let s = 0; s < 5; s++) {
        await t.trainStep(batch, { bf16: quantize === 'nf4' });
        await t.optimizerStep({ lr: 1e-2 });
      }
      expect((await t.evaluate(batch)).loss, quantize ?? 'k-quant base').toBeLessThan(before);
    }
  });
});
