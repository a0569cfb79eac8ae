// One rank of a data-parallel test run (test/distributed.test.ts starts it under mpirun, or alone
// as the 1-rank reference). argv[2]: a JSON job {modelDir, dataFile, method, trainer, out}.
// Rank 0 writes out.json (per-step losses and gradient norms, the stop reason) and out.params
// (the final flat parameters, f32); every rank writes out.rank<R>.json (its optimizer-state sizes).
import { writeFileSync } from 'node:fs';
import { loadDataset, loadModel, Trainer } from '../../dist/lib/index.js';
import { processGroup } from '../../dist/lib/dist/group.js';

const job = JSON.parse(process.argv[2]);
// Options for one rank only (the mismatch test), from the launcher's rank before any MPI call.
const launchRank = Number(process.env.OMPI_COMM_WORLD_RANK ?? 0);
Object.assign(job.trainer, job.rankTrainer?.[launchRank] ?? {});
const model = await loadModel(job.modelDir);
if (job.method === 'full') model.enableFullTraining();
else model.addLora({ r: 4, alpha: 8, seed: 1 });
if (job.probeGrads) {
  // One micro-batch's backward, then this rank's gradient vector as it stands (ZeRO-2: reduced to
  // the owners during the backward, the other shards dropped). Rows: job.probeGrads rows of ids.
  const g = processGroup();
  if (g.world > 1) model.native.shardTraining({ stage: job.trainer.distributed?.zero ?? 1 });
  const per = job.probeGrads.length / g.world, ids = job.probeGrads.slice(g.rank * per, (g.rank + 1) * per);
  await model.trainStep({ inputIds: ids, labels: ids });
  const s = model.native.optimizerState(['grads']);
  writeFileSync(`${job.out}.grads${g.rank}`, new Float32Array(new (await import('../../dist/lib/index.js')).Tensor(s.grads).data));
  writeFileSync(`${job.out}.rank${g.rank}.json`, JSON.stringify({ rank: g.rank, world: g.world, momentsOffset: s.momentsOffset, momentsLength: s.momentsLength }));
  process.exit(0);
}
const data = await loadDataset(job.dataFile, model.tokenizer, { validation: job.validation ?? 0, seed: 4 });
const trainer = new Trainer(model, job.trainer);
const steps = [];
trainer.on('step', (e) => {
  steps.push({ step: e.step, loss: e.loss, gradNorm: e.gradNorm, tokens: e.tokens });
  // The lost-rank test: this rank dies as SIGKILL would take it, mid-run.
  if (job.killAt && job.killAt.rank === launchRank && job.killAt.step === e.step) process.kill(process.pid, 'SIGKILL');
});
const evals = [];
trainer.on('eval', (e) => evals.push({ step: e.step, loss: e.loss, tokens: e.tokens }));
let result, error;
try {
  result = await trainer.train(job.validation ? data : data.train);
} catch (e) {
  error = { code: e.code, message: e.message };
}
const g = processGroup();
const s = model.native.optimizerState(['m']);
writeFileSync(`${job.out}.rank${g.rank}.json`, JSON.stringify({ rank: g.rank, world: g.world, momentsValues: s.m.shape[0], momentsLength: s.momentsLength, error }));
if (g.rank === 0) {
  writeFileSync(`${job.out}.json`, JSON.stringify({ steps, evals, stopReason: result?.stopReason, best: result?.best, error }));
  writeFileSync(`${job.out}.params`, model.trainableParams().data);
}
if (error) process.exitCode = 3;
