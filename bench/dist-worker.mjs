// One rank of the `dist` suite (bench/suites/dist.ts starts 1 or 2 of them, under mpirun for 2).
// argv[2]: {model, method: 'lora' | 'full', r, zero, batch (global rows), seq, reps}. Each rank
// takes batch / world rows of the same global batch, steps (trainStep, then optimizerStep) after
// a barrier, and rank 0 prints one JSON line: the medians of the step, its compute and its
// collectives, the bytes a ring sends, the optimizer state per rank, peak RSS per rank.
import { loadModel, Tensor } from '../dist/lib/index.js';
import { processGroup } from '../dist/lib/dist/group.js';

const job = JSON.parse(process.argv[2]);
const g = processGroup();
const model = await loadModel(job.model);
if (job.method === 'full') model.enableFullTraining();
else model.addLora({ r: job.r, alpha: 2 * job.r });
if (g.world > 1) model.native.shardTraining({ stage: job.zero });
const per = job.batch / g.world;
const rows = Array.from({ length: per }, (_, b) => {
  const row = g.rank * per + b;
  return Array.from({ length: job.seq }, (_, i) => ((row * job.seq + i) * 7919) % 49152);
});
const ids = Tensor.from('i32', [per, job.seq], rows.flat());
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const step = [], compute = [], comm = [];
let bytes = 0;
for (let i = 0; i <= job.reps; i++) {
  await g.barrier();
  const t0 = performance.now();
  const b = await model.native.trainStep(ids.handle, ids.handle, {}); // the addon's own result: with ZeRO-2's time in collectives
  const t1 = performance.now();
  const r = await model.native.optimizerStep({ lr: 1e-5 });
  const t2 = performance.now();
  if (i === 0) continue; // warm-up
  // ZeRO-2's reductions run during the backward (overlapping it); the rest in the optimizer step.
  step.push((t2 - t0) / 1000), compute.push((t1 - t0) / 1000), comm.push(r.commSeconds + (b.commSeconds ?? 0));
  bytes = r.commBytes + (b.commBytes ?? 0);
}
const s = model.native.optimizerState(['m']);
const mem = new Float64Array(3 * g.world);
mem[g.rank] = 2 * 4 * s.momentsLength; // m and v, fp32
mem[g.world + g.rank] = process.resourceUsage().maxRSS * 1024;
mem[2 * g.world + g.rank] = process.memoryUsage().rss; // between steps: what a rank keeps
await g.allReduce(mem);
if (g.rank === 0) {
  console.log(JSON.stringify({
    world: g.world, seconds: median(step), computeSeconds: median(compute), commSeconds: median(comm), commBytes: bytes,
    params: model.trainableLayout().reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0), optimizerBytes: [...mem.subarray(0, g.world)],
    peakRss: [...mem.subarray(g.world, 2 * g.world)], rssBetweenSteps: [...mem.subarray(2 * g.world)],
  }));
}
