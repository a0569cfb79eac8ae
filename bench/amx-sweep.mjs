// `node bench/amx-sweep.mjs` (after `npm run build`): on a CPU with AMX, bf16 GEMM GFLOP/s at 2
// threads for each (TUNEKIT_AMX_KC, TUNEKIT_AMX_MC) in CONFIGS ("kc:mc ..."), interleaved on the
// gemm bench's shapes, and the best by geometric mean ("BEST kc mc"). How the defaults were chosen.
// Shapes marked P run with B pre-packed (`prepacked`), the path a model's frozen weights take in
// every bf16 training step (gemm_range_panels); the others pack B inside the product.
import { gemm, Tensor, setRuntimeOptions } from '../dist/lib/index.js';
setRuntimeOptions({ threads: 2 });
const configs = (process.env.CONFIGS ?? '256:64 256:128 384:64 512:64 512:128 1024:128').split(' ').map((c) => c.split(':').map(Number));
const shapes = [
  [512, 2048, 2048, false, true], [512, 2048, 2048, false, false], [2048, 2048, 512, true, false],
  [512, 576, 576, false, true], [512, 1536, 576, false, true], [512, 576, 1536, false, false], [576, 576, 512, true, false],
  [512, 8192, 2048, false, true], [512, 2048, 8192, false, false],
  [1024, 576, 576, false, true, 'P'], [1024, 1536, 576, false, true, 'P'], [1024, 576, 1536, false, false, 'P'],
  [512, 2048, 2048, false, true, 'P'], [512, 2048, 8192, false, false, 'P'],
];
const results = configs.map(() => shapes.map(() => []));
for (let round = 0; round < 2; round++)
  for (const [si, [m, n, k, ta, tb, packed]] of shapes.entries()) {
    const a = Tensor.zeros('f32', ta ? [k, m] : [m, k]); a.data.fill(0.5);
    const b = Tensor.zeros('f32', tb ? [n, k] : [k, n]); b.data.fill(0.25);
    const c = Tensor.zeros('f32', [m, n]);
    // Pre-packed: B is packed once per call, so more repeats keep that out of the figure.
    const flops = 2 * m * n * k, rep = Math.max(1, Math.round((packed ? 0.2 : 0.03) / (flops / 1e12)));
    const o = { transposeA: ta, transposeB: tb, out: c, bf16: true, repeat: rep, prepacked: !!packed };
    for (const [ci, [kc, mc]] of configs.entries()) {
      process.env.TUNEKIT_AMX_KC = String(kc); process.env.TUNEKIT_AMX_MC = String(mc);
      await gemm(a, b, o);
      for (let i = 0; i < 3; i++) {
        const t0 = process.hrtime.bigint();
        await gemm(a, b, o);
        results[ci][si].push(flops / (Number(process.hrtime.bigint() - t0) / 1e9 / rep) / 1e9);
      }
    }
  }
const med = (v) => v.slice().sort((x, y) => x - y)[v.length >> 1];
let best = null;
for (const [ci, [kc, mc]] of configs.entries()) {
  const meds = results[ci].map(med), geo = Math.exp(meds.reduce((s, v) => s + Math.log(v), 0) / meds.length);
  console.log(`kc ${kc} mc ${mc}: geomean ${geo.toFixed(0)} | ` + meds.map((v, i) => (shapes[i][5] ? 'P' : '') + v.toFixed(0)).join(' '));
  if (!best || geo > best[0]) best = [geo, kc, mc];
}
console.log(`BEST ${best[1]} ${best[2]}`);
