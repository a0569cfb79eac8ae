// Before/after check of a change to the K-quant GEMM path: one round of the gemm suite's K-quant
// products (Q4_K, Q6_K and the bf16-weight product they are held to, fp32 and bf16, SmolLM2's
// 1536 -> 576 and Llama 3.2 1B's 2048 -> 2048 at 512 tokens), medians of 5, as JSON GFLOP/s.
// Alternate two builds of the addon in one shell so both see the same machine state:
//   for i in 1 2 3; do for v in before after; do TUNEKIT_ADDON=/tmp/$v.node node bench/ab-kquant.mjs; done; done
// (after `npm run build`; a build's addon is build/Release/tunekit.node, copied aside per variant).
import { gemm, quantizeWeights, Tensor } from '../dist/lib/index.js';
import { randomKQuant } from '../dist/bench/kquant-blocks.js';
import { medianSeconds } from '../dist/bench/timing.js';

const out = {};
for (const [k, n] of [[1536, 576], [2048, 2048]]) {
  const T = 512, flops = 2 * T * n * k;
  const a = Tensor.from('f32', [T, k], new Float32Array(T * k).fill(0.5)), o = Tensor.zeros('f32', [T, n]);
  const ws = {
    bf16: await quantizeWeights(Tensor.from('f32', [n, k], new Float32Array(n * k).fill(0.01)), { format: 'bf16' }),
    q4_k: randomKQuant('q4_k', n, k, 1),
    q6_k: randomKQuant('q6_k', n, k, 1),
  };
  for (const mode of ['fp32', 'bf16'])
    for (const [f, w] of Object.entries(ws)) {
      const seconds = await medianSeconds((repeat) => gemm(a, w, { transposeB: true, out: o, repeat, bf16: mode === 'bf16' }), 5, 0.01);
      out[`${mode} ${n}x${k} ${f}`] = flops / seconds / 1e9;
    }
}
console.log(JSON.stringify(out));
