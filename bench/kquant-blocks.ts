// Random but valid GGUF block weights for the benches (no K-quant quantizer exists here, and a
// product's or a step's speed does not depend on the values): random bits everywhere, with each
// block's fp16 scales set so that the decoded weights stay within ±0.02 (the spread of a trained
// projection), never NaN or Inf.
import { Tensor } from '../lib/index.js';
import { Weights } from '../lib/weights.js';
import { rng } from './random.js';

export type BenchBlockFormat = 'q2_k' | 'q3_k' | 'q4_k' | 'q6_k' | 'q5_0' | 'q8_0';

// GGUF type id, elements and bytes per block, and each fp16 scale: its byte offset and value.
// Bounds: Q2_K |w| <= d·15·3 + dmin·15; Q3_K d·32·4; Q4_K d·63·15 + dmin·63; Q6_K d·128·32;
// Q5_0 16·d; Q8_0 128·d.
export const BLOCKS: Record<BenchBlockFormat, { ggufType: number; elements: number; bytes: number; scales: [number, number][] }> = {
  q2_k: { ggufType: 10, elements: 256, bytes: 84, scales: [[80, 0.01 / 45], [82, 0.01 / 15]] },
  q3_k: { ggufType: 11, elements: 256, bytes: 110, scales: [[108, 0.02 / 128]] },
  q4_k: { ggufType: 12, elements: 256, bytes: 144, scales: [[0, 0.01 / (63 * 15)], [2, 0.01 / 63]] },
  q6_k: { ggufType: 14, elements: 256, bytes: 210, scales: [[208, 0.02 / (128 * 32)]] },
  q5_0: { ggufType: 6, elements: 32, bytes: 22, scales: [[0, 0.02 / 16]] },
  q8_0: { ggufType: 8, elements: 32, bytes: 34, scales: [[0, 0.02 / 128]] },
};

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
