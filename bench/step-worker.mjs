// One configuration of the `step` suite in its own process, so its peak RSS is its own.
// Usage: node bench/step-worker.mjs <gguf or folder> <batch> <seq> <r> <fp32|bf16|qlora> <reps> [checkpoint]
// (qlora: projections re-quantized to NF4 at load, bf16 step; checkpoint: activation checkpointing)
import { loadModel } from '../dist/lib/index.js';

const [path, batch, seq, r, mode, reps, checkpoint] = process.argv.slice(2);
const m = await loadModel(path, mode === 'qlora' ? { quantize: 'nf4' } : {});
m.addLora({ r: Number(r), alpha: 2 * Number(r) });
const ids = Array.from({ length: Number(batch) }, (_, b) => Array.from({ length: Number(seq) }, (_, i) => ((b * Number(seq) + i) * 7919) % 49152));
const times = [];
for (let i = 0; i <= Number(reps); i++) {
  const t0 = process.hrtime.bigint();
  await m.trainStep({ inputIds: ids, labels: ids }, { bf16: mode !== 'fp32', checkpoint: checkpoint === 'checkpoint' });
  await m.optimizerStep({ lr: 1e-4 });
  if (i > 0) times.push(Number(process.hrtime.bigint() - t0) / 1e9); // the first is a warm-up
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ seconds: times[times.length >> 1], peakRss: process.resourceUsage().maxRSS * 1024 }));
