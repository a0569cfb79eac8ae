// Times the causal attention op alone (forward, then backward) at one shape, for A/B runs of
// attention changes: node bench/attention-op.mjs [tokens] [qHeads] [kvHeads] [headDim] [reps] [fp32|bf16]
// (TUNEKIT_ADDON picks another build; TUNEKIT_ISA another kernel set). Prints median ms.
import { Tensor } from '../dist/lib/index.js';
import { native } from '../dist/lib/native.js';

const [n, hq, hkv, hd, reps, mode] = [...process.argv.slice(2, 7).map(Number), process.argv[7] ?? 'bf16'];
const tokens = n || 4096, qHeads = hq || 9, kvHeads = hkv || 3, headDim = hd || 64, count = reps || 5;
const fill = (len, seed) => {
  const v = new Float32Array(len);
  let s = seed >>> 0;
  for (let i = 0; i < len; i++) { s = (s * 1664525 + 1013904223) >>> 0; v[i] = s / 2 ** 32 - 0.5; }
  return Tensor.from('f32', [len], v);
};
const q = fill(tokens * qHeads * headDim, 1), k = fill(tokens * kvHeads * headDim, 2), v = fill(tokens * kvHeads * headDim, 3);
const g = fill(tokens * qHeads * headDim, 4), out = Tensor.zeros('f32', [tokens * qHeads * headDim]), lse = Tensor.zeros('f32', [tokens * qHeads]);
const dq = Tensor.zeros('f32', [tokens * qHeads * headDim]), dk = Tensor.zeros('f32', [tokens * kvHeads * headDim]), dv = Tensor.zeros('f32', [tokens * kvHeads * headDim]);
const o = { tokens, qHeads, kvHeads, headDim, bf16: mode === 'bf16' };
const run = (name, ts) => native.runOp(name, ts.map((t) => t.handle), o);
// Builds before the forward kept its row statistics (lse) take four and seven tensors.
let withLse = true;
try { await run('attention_forward', [q, k, v, out, lse]); } catch { withLse = false; }
const fwd = [], bwd = [];
for (let i = 0; i <= count; i++) {
  let t0 = process.hrtime.bigint();
  await run('attention_forward', withLse ? [q, k, v, out, lse] : [q, k, v, out]);
  const t1 = process.hrtime.bigint();
  await run('attention_backward', withLse ? [q, k, v, g, dq, dk, dv, out, lse] : [q, k, v, g, dq, dk, dv]);
  const t2 = process.hrtime.bigint();
  if (i > 0) fwd.push(Number(t1 - t0) / 1e6), bwd.push(Number(t2 - t1) / 1e6);
}
const median = (x) => x.sort((a, b) => a - b)[x.length >> 1];
const flops = 2 * 2 * qHeads * headDim * tokens * (tokens + 1) / 2; // QKᵀ and PV over the causal half
const f = median(fwd), b = median(bwd);
console.log(JSON.stringify({ forwardMs: +f.toFixed(1), backwardMs: +b.toFixed(1), forwardGflops: +(flops / f / 1e6).toFixed(1), backwardGflops: +(2.5 * flops / b / 1e6).toFixed(1) }));
