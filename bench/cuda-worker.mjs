// One configuration of the `cuda` suite in its own process, so the GPU memory high-water mark is
// its own. Usage: node bench/cuda-worker.mjs <model folder> <batch> <seq> <r> <lora|qlora> <reps> <device>
// (qlora: projections quantized to NF4 at load). bf16 steps, LoRA on all seven projections.
import { loadModel, runtimeInfo } from '../dist/lib/index.js';

const [path, batch, seq, r, mode, reps, device] = process.argv.slice(2);
const m = await loadModel(path, { device, ...(mode === 'qlora' ? { quantize: 'nf4' } : {}) });
m.addLora({ r: Number(r), alpha: 2 * Number(r) });
const vocab = m.config.vocab;
const ids = Array.from({ length: Number(batch) }, (_, b) => Array.from({ length: Number(seq) }, (_, i) => ((b * Number(seq) + i) * 7919) % vocab));
const times = [];
for (let i = 0; i <= Number(reps); i++) {
  const t0 = process.hrtime.bigint();
  await m.trainStep({ inputIds: ids, labels: ids }, { bf16: true });
  await m.optimizerStep({ lr: 1e-4 });
  if (i > 0) times.push(Number(process.hrtime.bigint() - t0) / 1e9); // the first is a warm-up
}
times.sort((a, b) => a - b);
const gpu = runtimeInfo().cuda.devices.find((d) => d.device === (device === 'cuda' ? 'cuda:0' : device));
console.log(JSON.stringify({ seconds: times[times.length >> 1], peakBytes: gpu.peakBytes }));
