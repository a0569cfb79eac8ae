// Random but valid GGUF block weights for the benches (no K-quant quantizer exists here, and a
// product's or a step's speed does not depend on the values): random bits everywhere, with each
// block's fp16 scales set so that the decoded weights stay within ±0.02 (the spread of a trained
// projection), never NaN or Inf.
import { GGML_TYPES } from '../lib/gguf/format.js';
import { Tensor } from '../lib/index.js';
import { Weights } from '../lib/weights.js';
import { rng } from './random.js';

export type BenchBlockFormat = 'q2_k' | 'q3_k' | 'q4_k' | 'q6_k' | 'q5_0' | 'q8_0';

// Each format's GGUF type id (its block sizes come from GGML_TYPES) and fp16 scales: byte offset
// in the block and value. Bounds: Q2_K |w| <= d·15·3 + dmin·15; Q3_K d·32·4; Q4_K d·63·15 +
// dmin·63; Q6_K d·128·32; Q5_0 16·d; Q8_0 128·d.
const SCALES: Record<BenchBlockFormat, { ggufType: number; scales: [number, number][] }> = {
  q2_k: { ggufType: 10, scales: [[80, 0.01 / 45], [82, 0.01 / 15]] },
  q3_k: { ggufType: 11, scales: [[108, 0.02 / 128]] },
  q4_k: { ggufType: 12, scales: [[0, 0.01 / (63 * 15)], [2, 0.01 / 63]] },
  q6_k: { ggufType: 14, scales: [[208, 0.02 / (128 * 32)]] },
  q5_0: { ggufType: 6, scales: [[0, 0.02 / 16]] },
  q8_0: { ggufType: 8, scales: [[0, 0.02 / 128]] },
};
export const BLOCKS = Object.fromEntries(
  Object.entries(SCALES).map(([f, v]) => [f, { ...v, elements: GGML_TYPES[v.ggufType]![1], bytes: GGML_TYPES[v.ggufType]![2] }]),
) as Record<BenchBlockFormat, { ggufType: number; elements: number; bytes: number; scales: [number, number][] }>;

/** fp16 bits of a positive value (subnormal below 2^-14, as the small K-quant scales are). */
function f16(v: number): number {
  if (v < 2 ** -14) return Math.round(v * 2 ** 24);
  const e = Math.floor(Math.log2(v));
  return ((e + 15) << 10) | Math.round((v / 2 ** e - 1) * 1024);
}

/** The stored bytes of `n` elements (a multiple of the block size) in `format`. */
export function randomBlocks(format: BenchBlockFormat, n: number, seed: number): Uint8Array {
  const { elements, bytes, scales } = BLOCKS[format];
  const blocks = n / elements;
  const u8 = new Uint8Array(blocks * bytes);
  const r = rng(seed);
  for (let i = 0; i < u8.length; i++) u8[i] = Math.floor(r() * 256);
  const bits = scales.map(([at, v]) => [at, f16(v)] as const);
  for (let b = 0; b < blocks; b++)
    for (const [at, v] of bits) {
      u8[b * bytes + at] = v & 0xff;
      u8[b * bytes + at + 1] = v >> 8;
    }
  return u8;
}

export function randomKQuant(format: 'q2_k' | 'q3_k' | 'q4_k' | 'q6_k', rows: number, cols: number, seed: number): Weights {
  const data = Tensor.zeros('u8', [(rows * cols / 256) * BLOCKS[format].bytes]);
  (data.data as Uint8Array).set(randomBlocks(format, rows * cols, seed));
  return Weights.fromParts({ format, shape: [rows, cols], data });
}
