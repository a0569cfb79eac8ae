// NF4 against bitsandbytes itself: test/reference/make_nf4_fixtures.py ran bnb's quantize_4bit /
// dequantize_4bit (CPU backend) and saved inputs, packed codes, statistics and dequantized values.
// Our packed bytes, statistics and dequantized values must equal theirs exactly — with one
// exception: with double quantization bnb's offset is torch's fp32 mean of the absmax, whose last
// bit depends on PyTorch's vectorized summation order; ours sums in fp64. There the offset and what
// derives from it (absmax2, recovered absmax, dequantized values) may differ by a few ulp, while
// the 4-bit and 8-bit codes must still be identical.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openSafetensors, quantizeWeights, runtimeInfo, setRuntimeOptions, Tensor, TunekitError, Weights, type Isa } from '../lib/index.js';

const dir = fileURLToPath(new URL('./reference/fixtures/nf4/', import.meta.url));
const cases = readdirSync(dir).filter((f) => f.endsWith('.safetensors'));

async function load(file: string) {
  const r = await openSafetensors(join(dir, file));
  const get = async (name: string) => (r.has(name) ? await r.read(name) : undefined);
  const fx = {
    blocksize: Number(r.metadata.blocksize),
    doubleQuant: r.metadata.double_quant === 'true',
    x: (await get('x'))!,
    codes: (await get('codes'))!,
    absmax: (await get('absmax'))!,
    dequantized: (await get('dequantized'))!,
    qabsmax: await get('qabsmax'),
    absmax2: await get('absmax2'),
    offset: await get('offset'),
  };
  await r.close();
  return fx;
}

const bytes = (t: Tensor) => Buffer.from(t.bytes);

// Every ISA's decoder up to this CPU's best (a forced ISA bounds the decoders: scalar, AVX2).
const info = runtimeInfo();
const order: Isa[] = ['scalar', 'avx2', 'avx512', 'avx512bf16', 'amx'];
const isas = order.slice(0, order.indexOf(info.detectedIsa) + 1);
afterAll(() => setRuntimeOptions({ isa: info.isa }));
async function eachIsaDequantizes(w: Weights, want: Tensor) {
  for (const isa of isas) {
    setRuntimeOptions({ isa });
    expect(bytes(await w.dequantize()).equals(bytes(want)), isa).toBe(true);
  }
}

describe.each(cases)('NF4 fixture %s', (file) => {
  it('quantizes to the same packed codes and statistics as bitsandbytes', async () => {
    const fx = await load(file);
    const n = fx.x.numel;
    const w = await quantizeWeights(Tensor.from('f32', [1, n], fx.x.data), { format: 'nf4', blocksize: fx.blocksize, doubleQuant: fx.doubleQuant });
    const parts = w.parts();
    expect(bytes(parts.data).equals(bytes(fx.codes))).toBe(true);
    const deq = await w.dequantize();
    if (!fx.doubleQuant) {
      expect(bytes(parts.absmax!).equals(bytes(fx.absmax))).toBe(true);
      expect(bytes(deq).equals(bytes(fx.dequantized))).toBe(true);
      return;
    }
    expect(bytes(parts.qabsmax!).equals(bytes(fx.qabsmax!))).toBe(true);
    const ulps = (a: number, b: number) => Math.abs(a - b) / (Math.abs(b) * 2 ** -23 + 1e-45);
    expect(ulps(parts.offset!, fx.offset!.data[0]!)).toBeLessThanOrEqual(2);
    for (const [ours, theirs] of [[parts.absmax2!, fx.absmax2!], [parts.absmax!, fx.absmax], [deq, fx.dequantized]] as const) {
      const a = ours.data as Float32Array, b = theirs.data as Float32Array;
      expect(a.length).toBe(b.length);
      for (let i = 0; i < a.length; i++) expect(ulps(a[i]!, b[i]!) <= 8 || Math.abs(a[i]! - b[i]!) < 1e-9).toBe(true);
    }
  });

  it('loads bitsandbytes parts and dequantizes them identically, on every ISA', async () => {
    const fx = await load(file);
    const n = fx.x.numel;
    const w = Weights.fromParts({
      format: 'nf4',
      shape: [1, n],
      blocksize: fx.blocksize,
      doubleQuant: fx.doubleQuant,
      data: fx.codes,
      ...(fx.doubleQuant ? { qabsmax: fx.qabsmax, absmax2: fx.absmax2, offset: fx.offset!.data[0] } : { absmax: fx.absmax }),
    });
    await eachIsaDequantizes(w, fx.dequantized);
  });

  it('dequantizes the same parts identically as rows of an odd width (decoding from odd starts)', async (ctx) => {
    const fx = await load(file);
    const n = fx.x.numel;
    // The widest odd row under n; none of at least 17 (a vector step and more) skips the case.
    const cols = [...Array(n).keys()].reverse().find((c) => c >= 17 && c < n && c % 2 === 1 && n % c === 0);
    if (!cols) return ctx.skip();
    const w = Weights.fromParts({
      format: 'nf4',
      shape: [n / cols, cols],
      blocksize: fx.blocksize,
      doubleQuant: fx.doubleQuant,
      data: fx.codes,
      ...(fx.doubleQuant ? { qabsmax: fx.qabsmax, absmax2: fx.absmax2, offset: fx.offset!.data[0] } : { absmax: fx.absmax }),
    });
    await eachIsaDequantizes(w, fx.dequantized);
  });
});

describe('NF4 bad input', () => {
  it('rejects unsupported block sizes, NaN/Inf weights and mis-sized parts', async () => {
    const x = Tensor.from('f32', [2, 64], new Float32Array(128).fill(0.5));
    await expect(quantizeWeights(x, { format: 'nf4', blocksize: 48 })).rejects.toThrow('Expected blocksize a power of two in [32, 4096] but received 48');
    await expect(quantizeWeights(x, { format: 'nf4', blocksize: 8192 })).rejects.toThrow(/blocksize/);
    const bad = Tensor.from('f32', [2, 64], new Float32Array(128).fill(0.5));
    bad.data[70] = NaN;
    const err = await quantizeWeights(bad, { format: 'nf4' }).catch((e) => e);
    expect(err).toBeInstanceOf(TunekitError);
    expect(err.message).toBe('Expected finite weights but element 70 (row 1) is NaN');
    bad.data[70] = -Infinity;
    await expect(quantizeWeights(bad, { format: 'q4_0' })).rejects.toThrow('element 70 (row 1) is Inf');
    expect(() => Weights.fromParts({ format: 'nf4', shape: [2, 64], data: Tensor.zeros('u8', [63]), absmax: Tensor.zeros('f32', [2]) })).toThrow(
      'Expected codes to be u8 with 64 elements but received u8 [63]',
    );
    expect(() => Weights.fromParts({ format: 'nf4', shape: [2, 64], data: Tensor.zeros('u8', [64]) })).toThrow('Expected part absmax for nf4 weights');
    expect(() => Weights.fromParts({ format: 'q4_0', shape: [2, 48], data: Tensor.zeros('u8', [54]) })).toThrow('Expected a column count divisible by 32 for q4_0 but received 48');
  });
});
