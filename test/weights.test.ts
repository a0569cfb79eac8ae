// Compact weight formats: GGUF blocks decoded exactly as llama.cpp defines them (hand-made blocks
// with known values), quantize/dequantize round trips within each format's step, and the GEMM with
// every format as its B operand against an fp64 reference over the decoded weights — on every ISA.
import { afterAll, describe, expect, it } from 'vitest';
import { gemm, quantizeWeights, runtimeInfo, setRuntimeOptions, Tensor, Weights, type Isa, type WeightFormat } from '../lib/index.js';
import { randomValues } from './helpers.js';
import { gemmReference, roundBf16, worstBoundRatio } from './reference.js';

/** fp16 bits of a value exactly representable in fp16 (test constants only). */
function f16(x: number): number {
  const table: Record<number, number> = { 0.5: 0x3800, 0.25: 0x3400, [-1]: 0xbc00, 2: 0x4000, 0.125: 0x3000, [-0.75]: 0xba00 };
  return table[x]!;
}

function blocks(bytes: number[]): Tensor<'u8'> {
  return Tensor.from('u8', [bytes.length], bytes);
}

describe('GGUF blocks decode as llama.cpp defines them', () => {
  it('Q4_0: w = (q - 8) * d, element j in the low nibble of qs[j], j + 16 in the high nibble', async () => {
    const qs = Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4));
    const d = f16(0.5);
    const w = Weights.fromParts({ format: 'q4_0', shape: [1, 32], data: blocks([d & 0xff, d >> 8, ...qs]) });
    const expected = [...Array.from({ length: 16 }, (_, j) => (j - 8) * 0.5), ...Array.from({ length: 16 }, (_, j) => (15 - j - 8) * 0.5)];
    expect([...(await w.dequantize()).data]).toEqual(expected);
  });

  it('Q4_1: w = q * d + m', async () => {
    const qs = Array.from({ length: 16 }, (_, j) => ((j * 3) % 16) | ((j % 7) << 4));
    const d = f16(0.25), m = f16(-1);
    const w = Weights.fromParts({ format: 'q4_1', shape: [1, 32], data: blocks([d & 0xff, d >> 8, m & 0xff, m >> 8, ...qs]) });
    const expected = [...Array.from({ length: 16 }, (_, j) => ((j * 3) % 16) * 0.25 - 1), ...Array.from({ length: 16 }, (_, j) => (j % 7) * 0.25 - 1)];
    expect([...(await w.dequantize()).data]).toEqual(expected);
  });

  it('Q8_0: w = q * d over two blocks', async () => {
    const q1 = Array.from({ length: 32 }, (_, j) => j * 4 - 64), q2 = Array.from({ length: 32 }, (_, j) => 127 - j * 8);
    const d1 = f16(0.125), d2 = f16(-0.75);
    const bytes = [d1 & 0xff, d1 >> 8, ...q1.map((q) => q & 0xff), d2 & 0xff, d2 >> 8, ...q2.map((q) => q & 0xff)];
    const w = Weights.fromParts({ format: 'q8_0', shape: [2, 32], data: blocks(bytes) });
    expect([...(await w.dequantize()).data]).toEqual([...q1.map((q) => q * 0.125), ...q2.map((q) => q * -0.75)]);
  });

  it('dequantizes into a given tensor, and checks its shape', async () => {
    const w = await quantizeWeights(Tensor.from('f32', [3, 64], randomValues(192, 4)), { format: 'q8_0' });
    const out = Tensor.zeros('f32', [3, 64]);
    expect(await w.dequantize(out)).toBe(out);
    expect([...out.data]).toEqual([...(await w.dequantize()).data]);
    await expect(w.dequantize(Tensor.zeros('f32', [64, 3]))).rejects.toThrow('Expected out to be an f32 tensor of shape [3, 64] but received f32 [64, 3]');
  });

  it('rejects block data of the wrong size', () => {
    expect(() => Weights.fromParts({ format: 'q8_0', shape: [2, 32], data: blocks(new Array(67).fill(0)) })).toThrow(
      'Expected blocks to be u8 with 68 elements but received u8 [67]',
    );
  });
});

describe('quantize and dequantize round trips', () => {
  const [rows, cols] = [6, 128];
  const x = randomValues(rows * cols, 99);
  const cases: [WeightFormat, (v: number, blockMax: number) => number][] = [
    ['f32', () => 0],
    ['bf16', (v) => Math.abs(v) * 2 ** -8],
    ['f16', (v) => Math.abs(v) * 2 ** -11 + 2 ** -25],
    // half a step, plus the fp16 rounding of the scale times the largest code
    ['q8_0', (_, amax) => (amax / 127) * 0.5 + amax * 2 ** -10],
    // the value of largest magnitude maps to -8: values of the other sign reach only +7 steps
    ['q4_0', (_, amax) => amax / 8 + amax * 2 ** -9],
    ['q4_1', (_, amax) => ((2 * amax) / 15) * 0.5 + amax * 2 ** -9],
    // half the widest gap between NF4 codes (-1 .. -0.696), in blocks of 64
    ['nf4', (_, amax) => amax * 0.1520],
  ];
  it.each(cases)('%s stays within its quantization step', async (format, tolerance) => {
    const w = await quantizeWeights(Tensor.from('f32', [rows, cols], x), { format });
    expect(w.shape).toEqual([rows, cols]);
    const back = (await w.dequantize()).data;
    for (let i = 0; i < x.length; i++) {
      const size = format === 'nf4' ? 64 : 32, block = Math.floor(i / size) * size;
      let amax = 0;
      for (let j = block; j < block + size; j++) amax = Math.max(amax, Math.abs(x[j]!));
      expect(Math.abs(back[i]! - x[i]!), `${format} element ${i}`).toBeLessThanOrEqual(tolerance(x[i]!, amax));
    }
  });
});

const info = runtimeInfo();
const order: Isa[] = ['scalar', 'avx2', 'avx512', 'avx512bf16', 'amx'];
const isas = order.slice(0, order.indexOf(info.detectedIsa) + 1);
afterAll(() => setRuntimeOptions({ isa: info.isa, threads: info.threads }));

describe.each(isas)('GEMM with compact weights on %s', (isa) => {
  const formats: WeightFormat[] = ['f32', 'bf16', 'f16', 'nf4', 'q4_0', 'q4_1', 'q8_0'];
  it.each(formats)('%s: Y = X·deq(W)ᵀ and dX = dY·deq(W) match fp64 over the decoded weights', async (format) => {
    setRuntimeOptions({ isa, threads: 2 });
    const [m, out, inp] = [37, 45, 96];
    const w = await quantizeWeights(Tensor.from('f32', [out, inp], randomValues(out * inp, 5)), { format });
    const wd = (await w.dequantize()).data;
    const xv = randomValues(m * inp, 6), dyv = randomValues(m * out, 7);
    const y = await gemm(Tensor.from('f32', [m, inp], xv), w, { transposeB: true });
    const ry = worstBoundRatio(y.data, gemmReference(xv, wd, null, m, out, inp, false, true), inp);
    expect(ry.ratio, `forward element ${ry.at}`).toBeLessThanOrEqual(1);
    const dx = await gemm(Tensor.from('f32', [m, out], dyv), w);
    const rx = worstBoundRatio(dx.data, gemmReference(dyv, wd, null, m, inp, out, false, false), out);
    expect(rx.ratio, `backward element ${rx.at}`).toBeLessThanOrEqual(1);
  });

  it('bf16 with B pre-packed (as a model keeps frozen weights) equals packing B inside the GEMM', async () => {
    setRuntimeOptions({ isa, threads: 2 });
    const cases = [
      [1, 1, 2, 'f32', true], [37, 45, 96, 'q4_1', true], [70, 64, 45, 'q4_1', false], [100, 70, 300, 'f32', true],
      [200, 33, 64, 'f32', false], [61, 97, 4100, 'f32', true], [130, 40, 4100, 'f32', false],
    ] as const; // row and column splits, ragged panels, K in several blocks, both orientations
    for (const [m, n, k, format, tb] of cases) {
      const av = randomValues(m * k, m + k), bv = randomValues(k * n, n + k);
      const b = await quantizeWeights(Tensor.from('f32', tb ? [n, k] : [k, n], bv), { format });
      const a = Tensor.from('f32', [m, k], av);
      const plain = await gemm(a, b, { transposeB: tb, bf16: true });
      const packed = await gemm(a, b, { transposeB: tb, bf16: true, prepacked: true });
      expect(Array.from(packed.data), `${m}x${n}x${k} ${format} tb=${tb}`).toEqual(Array.from(plain.data));
      const bothPacked = await gemm(a, b, { transposeB: tb, bf16: true, prepacked: true, prepackedA: true });
      expect(Array.from(bothPacked.data), `${m}x${n}x${k} A packed too`).toEqual(Array.from(plain.data));
      const bd = (await b.dequantize()).data;
      const r = worstBoundRatio(packed.data, gemmReference(av.map(roundBf16), bd.map(roundBf16), null, m, n, k, false, tb), k);
      expect(r.ratio, `${m}x${n}x${k} element ${r.at}`).toBeLessThanOrEqual(1);
    }
  });

  it('bf16 mode rounds both operands to bf16 and accumulates in fp32', async () => {
    setRuntimeOptions({ isa, threads: 2 });
    for (const [m, n, k] of [[1, 1, 1], [13, 17, 19], [37, 70, 257], [64, 96, 1031]] as const) {
      for (const [ta, tb] of [[false, true], [false, false], [true, false]] as const) {
        const av = randomValues(m * k, m + k), bv = randomValues(k * n, n + k);
        const c = await gemm(Tensor.from('f32', ta ? [k, m] : [m, k], av), Tensor.from('f32', tb ? [n, k] : [k, n], bv), {
          transposeA: ta, transposeB: tb, bf16: true,
        });
        const ref = gemmReference(av.map(roundBf16), bv.map(roundBf16), null, m, n, k, ta, tb);
        const r = worstBoundRatio(c.data, ref, k);
        expect(r.ratio, `${m}x${n}x${k} ta=${ta} tb=${tb} element ${r.at}`).toBeLessThanOrEqual(1);
      }
    }
  });
});

describe('bf16 rounding in the GEMM packers', () => {
  // Bit patterns where rounding is easy to get wrong: ties to even both ways, just above a tie,
  // denormals, the largest float (rounds to infinity), a NaN whose payload sits in the low half
  // (truncating or adding would make it infinity), infinities and signed zeros.
  const bits = [0x3f808000, 0x3f818000, 0x3f808001, 0xbf818000, 0x00012345, 0x80408000, 0x7f7fffff, 0x7f800001, 0xff800000, 0, 0x80000000, 0x40490fdb];
  // Typed arrays throughout: a NaN read into a JS number loses its payload.
  const f32 = (u: number[]) => new Float32Array(new Uint32Array(u).buffer);
  const values = f32(bits);
  // The software-rounding paths; AVX512_BF16's vcvtne2ps2bf16 flushes denormals, so it is left out.
  const rounding = isas.filter((i) => i === 'scalar' || i === 'avx2');
  it.each(rounding)('%s rounds ties to even, keeps denormals and NaN, in every packing orientation', async (isa) => {
    setRuntimeOptions({ isa, threads: 2 });
    const n = values.length;
    const b = f32(bits.map((_, j) => bits[(j * 5) % n]!));  // every pair of values meets
    for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      // K = 1: each C element is one product of two bf16 values, exact in fp32 where it is normal.
      const c = await gemm(Tensor.from('f32', ta ? [1, n] : [n, 1], values), Tensor.from('f32', tb ? [n, 1] : [1, n], b), {
        transposeA: ta, transposeB: tb, bf16: true,
      });
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) {
          const want = Math.fround(roundBf16(values[i]!) * roundBf16(b[j]!)), got = c.data[i * n + j]!;
          expect(Number.isNaN(want) ? Number.isNaN(got) : got === want, `${isa} ta=${ta} tb=${tb} [${i}, ${j}]: ${got} vs ${want}`).toBe(true);
        }
    }
  });
});
