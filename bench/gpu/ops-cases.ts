// The backend-ops cases (as ggml's test-backend-ops): every entry of the op table on fresh
// seeded data, run through runOp on a backend with its outputs poisoned first, so that a device
// backend can be held to the CPU's results. Shared by test/backend-ops.test.ts and the GPU
// machine's check (bench/gpu/check.mjs, which has no vitest).
import { join } from 'node:path';
import { openGguf, quantizeWeights, Tensor, type Weights } from '../../lib/index.js';
import { native, packageRoot } from '../../lib/native.js';
import { randomValues, rng } from '../random.js';

export type Options = Record<string, number | boolean | string>;
export interface Case {
  label: string;
  op: string;
  tensors: () => Promise<Tensor[]> | Tensor[];
  options: Options;
  outputs: number[]; // tensors compared after the op
  poison?: number[]; // outputs the op must write whole (NaN before it runs)
  result?: boolean; // compare the numbers the op returns too
  tol: number; // normalized error allowed against the CPU
}

const f32 = (n: number, seed: number, scale = 1) => Tensor.from('f32', [n], randomValues(n, seed).map((v) => v * scale));
const i32 = (values: number[]) => Tensor.from('i32', [values.length], values);
const ints = (n: number, below: number, seed: number) => {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * below));
};

// Normalized error allowed: fp32 ops differ only in summation order; bf16 attention rounds the
// unnormalized probabilities (the CPU rounds normalized ones), so a bf16 step apart.
const FP32 = 1e-5, BF16 = 2e-2;

/** Every op of the table, in the variants that take different paths (transposes, bf16, masks, formats). */
export function cases(): Case[] {
  const out: Case[] = [];
  const rows = 37, dim = 96;
  out.push({ label: 'rmsnorm forward', op: 'rmsnorm_forward', tensors: () => [f32(rows * dim, 1), f32(dim, 2), f32(rows * dim, 3)], options: { rows, dim, eps: 1e-5 }, outputs: [2], poison: [2], tol: FP32 });
  out.push({ label: 'rmsnorm backward', op: 'rmsnorm_backward', tensors: () => [f32(rows * dim, 1), f32(dim, 2), f32(rows * dim, 3), f32(rows * dim, 4), f32(dim, 5)], options: { rows, dim, eps: 1e-5 }, outputs: [3, 4], poison: [3], tol: FP32 });
  out.push({ label: 'rmsnorm backward, residual', op: 'rmsnorm_backward_full', tensors: () => [f32(rows * dim, 1), f32(dim, 2), f32(rows * dim, 3), f32(rows * dim, 4), f32(dim, 5), f32(rows * dim, 6)], options: { rows, dim, eps: 1e-6 }, outputs: [3, 4], poison: [3], tol: FP32 });
  out.push({ label: 'layernorm forward', op: 'layernorm_forward', tensors: () => [f32(rows * dim, 1), f32(dim, 2), f32(dim, 3), f32(rows * dim, 4)], options: { rows, dim, eps: 1e-5 }, outputs: [3], poison: [3], tol: FP32 });
  out.push({ label: 'layernorm backward', op: 'layernorm_backward', tensors: () => [f32(rows * dim, 1), f32(dim, 2), f32(rows * dim, 3), f32(rows * dim, 4), f32(dim, 5), f32(dim, 6)], options: { rows, dim, eps: 1e-5 }, outputs: [3, 4, 5], poison: [3], tol: FP32 });
  for (const interleaved of [true, false])
    for (const op of ['rope_forward', 'rope_backward'])
      out.push({ label: `${op.replace('_', ' ')}${interleaved ? ', interleaved' : ', halves'}`, op, tensors: () => [f32(23 * 3 * 64, 7), i32(ints(23, 4000, 8))], options: { tokens: 23, heads: 3, headDim: 64, theta: 10000, interleaved }, outputs: [0], tol: FP32 });
  for (const op of ['rope_forward', 'rope_backward'])
    out.push({ label: `${op.replace('_', ' ')}, partial rotary`, op, tensors: () => [f32(23 * 3 * 64, 9), i32(ints(23, 4000, 10))], options: { tokens: 23, heads: 3, headDim: 64, theta: 10000, interleaved: false, rotaryDim: 48 }, outputs: [0], tol: FP32 });
  for (const [hd, window, segment, bf16, softcap] of [[64, 0, 70, false, 0], [40, 0, 70, false, 0], [128, 16, 70, false, 0], [64, 0, 25, false, 0], [64, 12, 25, true, 0], [256, 0, 33, false, 0], [256, 16, 70, false, 0.3]] as const) {
    const n = 70, hq = 4, hkv = 2, what = `head ${hd}${window ? `, window ${window}` : ''}${segment < n ? `, packed by ${segment}` : ''}${bf16 ? ', bf16' : ''}${softcap ? `, soft-capped at ${softcap}` : ''}`;
    const o = { tokens: n, qHeads: hq, kvHeads: hkv, headDim: hd, window, segment, bf16, softcap };
    const qkv = () => [f32(n * hq * hd, 11), f32(n * hkv * hd, 12), f32(n * hkv * hd, 13)];
    // lse: row statistics the CPU's forward keeps for its backward (CUDA's backward recomputes them).
    out.push({ label: `attention forward, ${what}`, op: 'attention_forward', tensors: () => [...qkv(), f32(n * hq * hd, 14), f32(n * hq, 18)], options: o, outputs: [3], poison: [3], tol: bf16 ? BF16 : FP32 });
    // The backward reads the forward's out and lse: the CPU's, on every backend.
    const forwardOnCpu = async () => {
      const [q, k, v] = qkv(), att = f32(n * hq * hd, 14), lse = f32(n * hq, 18);
      await native.runOp('attention_forward', [q, k, v, att, lse].map((x) => x!.handle), { ...o, backend: 'cpu' });
      return { q: q!, k: k!, v: v!, att, lse };
    };
    out.push({ label: `attention backward, ${what}`, op: 'attention_backward', tensors: async () => {
      const f = await forwardOnCpu();
      return [f.q, f.k, f.v, f32(n * hq * hd, 15), f32(n * hq * hd, 16), f32(n * hkv * hd, 17), f32(n * hkv * hd, 19), f.att, f.lse];
    }, options: o, outputs: [4, 5, 6], poison: [4, 5, 6], tol: bf16 ? BF16 : FP32 });
  }
  const n = 5000;
  out.push({ label: 'swiglu forward', op: 'swiglu_forward', tensors: () => [f32(n, 21, 4), f32(n, 22), f32(n, 23)], options: {}, outputs: [2], poison: [2], tol: FP32 });
  out.push({ label: 'swiglu backward', op: 'swiglu_backward', tensors: () => [f32(n, 21, 4), f32(n, 22), f32(n, 23), f32(n, 24), f32(n, 25)], options: {}, outputs: [3, 4], poison: [3, 4], tol: FP32 });
  out.push({ label: 'gelu forward', op: 'gelu_forward', tensors: () => [f32(n, 26, 4), f32(n, 27)], options: {}, outputs: [1], poison: [1], tol: FP32 });
  out.push({ label: 'gelu backward', op: 'gelu_backward', tensors: () => [f32(n, 26, 4), f32(n, 27), f32(n, 28)], options: {}, outputs: [2], poison: [2], tol: FP32 });
  out.push({ label: 'geglu forward', op: 'geglu_forward', tensors: () => [f32(n, 21, 4), f32(n, 22), f32(n, 23)], options: {}, outputs: [2], poison: [2], tol: FP32 });
  out.push({ label: 'geglu backward', op: 'geglu_backward', tensors: () => [f32(n, 21, 4), f32(n, 22), f32(n, 23), f32(n, 24), f32(n, 25)], options: {}, outputs: [3, 4], poison: [3, 4], tol: FP32 });
  const labels = ints(19, 3000, 31).map((l, i) => (i % 5 === 3 ? -100 : l));
  out.push({ label: 'cross-entropy with its gradient', op: 'cross_entropy', tensors: () => [f32(19 * 3000, 32, 8), i32(labels)], options: { rows: 19, vocab: 3000, grad: true }, outputs: [0], result: true, tol: FP32 });
  const ids = [...ints(40, 50, 33), 7, 7, 7];
  out.push({ label: 'embedding gather', op: 'embedding_forward', tensors: () => [f32(50 * 72, 34), i32(ids), f32(ids.length * 72, 35)], options: { vocab: 50, dim: 72 }, outputs: [2], poison: [2], tol: 0 });
  out.push({ label: 'embedding gather, accumulated', op: 'embedding_forward', tensors: () => [f32(50 * 72, 34), i32(ids), f32(ids.length * 72, 35)], options: { vocab: 50, dim: 72, accumulate: true }, outputs: [2], tol: 0 });
  out.push({ label: 'embedding gradient (repeated ids)', op: 'embedding_backward', tensors: () => [f32(50 * 72, 36), i32(ids), f32(ids.length * 72, 37)], options: { vocab: 50, dim: 72 }, outputs: [0], tol: FP32 });
  out.push({ label: 'bias', op: 'bias_forward', tensors: () => [f32(rows * dim, 41), f32(dim, 42)], options: { rows, dim }, outputs: [0], tol: 0 });
  out.push({ label: 'bias gradient', op: 'bias_backward', tensors: () => [f32(dim, 43), f32(rows * dim, 44)], options: { rows, dim }, outputs: [0], tol: FP32 });
  out.push({ label: 'add', op: 'add', tensors: () => [f32(n, 45), f32(n, 46)], options: {}, outputs: [0], tol: 0 });
  out.push({ label: 'softcap', op: 'softcap', tensors: () => [f32(n, 46, 90)], options: { cap: 30 }, outputs: [0], tol: FP32 });
  out.push({ label: 'softcap backward', op: 'softcap_backward', tensors: () => [f32(n, 47, 29), f32(n, 48)], options: { cap: 30 }, outputs: [1], tol: FP32 });
  out.push({ label: 'scale', op: 'scale', tensors: () => [f32(n, 45)], options: { scale: 25.3 }, outputs: [0], tol: 0 });
  out.push({ label: 'strided block copy', op: 'copy_block', tensors: () => [f32(8 * 40 + 17, 47), f32(8 * 30 + 17, 48)], options: { rows: 9, cols: 17, ldd: 40, lds: 30 }, outputs: [0], tol: 0 });
  out.push({ label: 'sums of squares by chunk', op: 'sum_squares_chunks', tensors: () => [f32(10_000, 49)], options: { chunk: 4096 }, outputs: [], result: true, tol: 1e-12 });
  for (const [ta, tb, bf16, beta, k2] of [[false, false, false, 0, 0], [true, false, false, 1, 0], [false, true, false, 0.5, 0], [true, true, false, 0, 0], [false, true, true, 0, 0], [false, false, false, 0, 24], [false, true, true, 1, 24]] as const) {
    const m = 45, nn = 67, k = 130;
    const tensors = () => [f32(m * k, 51), f32(k * nn, 52), f32(m * nn, 53), ...(k2 ? [f32(m * k2, 54), f32(nn * k2, 55)] : [])];
    out.push({ label: `gemm${ta ? ' Aᵀ' : ''}${tb ? ' Bᵀ' : ''}${beta ? ` beta ${beta}` : ''}${k2 ? ' + second product' : ''}${bf16 ? ', bf16' : ''}`, op: 'gemm', tensors, options: { m, n: nn, k, k2, transposeA: ta, transposeB: tb, alpha: 0.75, beta, bf16 }, outputs: [2], poison: beta ? [] : [2], tol: bf16 ? 1e-4 : FP32 });
  }
  for (const [r, dropout, bf16, acc] of [[8, 0, false, false], [8, 0.1, false, true], [32, 0, true, false], [32, 0.2, true, true]] as const) {
    const m = 33, inn = 80, o = 48, what = `r ${r}${dropout ? `, dropout ${dropout}` : ''}${bf16 ? ', bf16' : ''}${acc ? ', accumulating' : ''}`;
    const opts = { m, in: inn, out: o, r, scale: 2, dropout, seed: 5, bf16, accumulateY: acc, accumulateGrads: acc, accumulateDx: acc };
    const base = () => [f32(m * inn, 61), f32(o * inn, 62), f32(r * inn, 63), f32(o * r, 64)];
    out.push({ label: `LoRA linear forward, ${what}`, op: 'lora_linear_forward', tensors: () => [...base(), f32(m * o, 65), f32(m * r, 66)], options: opts, outputs: [4, 5], poison: acc ? [5] : [4, 5], tol: bf16 ? 1e-4 : FP32 });
    out.push({ label: `LoRA linear backward, ${what}`, op: 'lora_linear_backward', tensors: () => [...base(), f32(m * o, 67), f32(m * r, 68), f32(m * inn, 69), f32(r * inn, 70), f32(o * r, 71)], options: opts, outputs: [6, 7, 8], poison: acc ? [] : [6, 7, 8], tol: bf16 ? 1e-4 : FP32 });
  }
  for (const format of ['f32', 'bf16', 'f16', 'nf4', 'q4_0', 'q4_1', 'q8_0'] as const) {
    const wr = 24, wc = 128;
    out.push({
      label: `weight decoding, ${format}`, op: 'decode_weights', options: { format, rows: wr, cols: wc, blocksize: 64 }, tol: 0,
      tensors: async () => {
        const w = await quantizeWeights(Tensor.from('f32', [wr, wc], randomValues(wr * wc, 81)), { format });
        const p = w.parts();
        return [p.data, ...(format === 'nf4' ? [p.absmax!] : []), Tensor.zeros('f32', [wr * wc])];
      },
      outputs: [format === 'nf4' ? 2 : 1], poison: [format === 'nf4' ? 2 : 1],
    });
  }
  // Every GGUF format from the file gguf-py wrote (test/reference/make_kquant_fixtures.py), bit exact.
  for (const format of ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'q5_0', 'q5_1', 'iq4_nl', 'iq4_xs'] as const) {
    out.push({
      label: `weight decoding, ${format} (gguf-py's file)`, op: 'decode_weights', options: { format, rows: 3, cols: 512 }, tol: 0,
      tensors: async () => {
        const g = await openGguf(join(packageRoot(), 'test/reference/fixtures/gguf/kquants.gguf'));
        try {
          return [((await g.read(format)) as Weights).parts().data, Tensor.zeros('f32', [3 * 512])];
        } finally {
          await g.close();
        }
      },
      outputs: [1], poison: [1],
    });
  }
  out.push({ label: 'AdamW step', op: 'adamw', tensors: () => [f32(n, 91), f32(n, 92), f32(n, 93, 0.1), Tensor.from('f32', [n], randomValues(n, 94).map((v) => v * v * 0.01))], options: { lr: 1e-3, weightDecay: 0.01, step: 7 }, outputs: [0, 2, 3], tol: FP32 });
  return out;
}

/** Runs a case on `backend`: the compared outputs (copies) and the numbers the op returned. */
export async function runCase(c: Case, backend: string): Promise<{ outputs: Float32Array[]; result: number[] }> {
  const t = await c.tensors();
  for (const i of c.poison ?? []) (t[i]!.data as Float32Array).fill(NaN);
  const result = await native.runOp(c.op, t.map((x) => x.handle), { ...c.options, backend });
  return { outputs: c.outputs.map((i) => Float32Array.from(t[i]!.data as Float32Array)), result };
}

/** ‖ours − ref‖ / ‖ref‖ (Infinity when ours has a NaN). */
export function normalizedError(ours: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0, s = 0;
  for (let i = 0; i < ref.length; i++) {
    if (Number.isNaN(ours[i]!)) return Infinity;
    d += (ours[i]! - ref[i]!) ** 2;
    s += ref[i]! ** 2;
  }
  return s === 0 ? Math.sqrt(d) : Math.sqrt(d / s);
}

/** The worst normalized error of a case on `backend` against the CPU, over its outputs and result. */
export async function caseError(c: Case, backend: string): Promise<number> {
  const ref = await runCase(c, 'cpu'), ours = await runCase(c, backend);
  let worst = 0;
  for (const [k, v] of ours.outputs.entries()) worst = Math.max(worst, normalizedError(v, ref.outputs[k]!));
  if (c.result) worst = Math.max(worst, normalizedError(ours.result, ref.result));
  return worst;
}
