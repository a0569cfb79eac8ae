// A training run in its own process, for the kill -9 resume test (test/trainer.test.ts): trains
// the tiny Llama + tokenizer folder with LoRA, a checkpoint every step, resuming from the newest
// checkpoint in the output folder. Prints "step N" as each step finishes.
// Usage: node train-child.mjs <model folder> <data.jsonl> <output folder> <max steps>
import { loadDataset, loadModel, setRuntimeOptions, Trainer } from '../../dist/lib/index.js';

const [modelDir, data, out, maxSteps] = process.argv.slice(2);
setRuntimeOptions({ threads: 2 });
const model = await loadModel(modelDir);
model.addLora({ r: 4, alpha: 8, seed: 5, dropout: 0.1 }); // dropout: resume must redraw the same masks
const dataset = await loadDataset(data, model.tokenizer, { validation: 0.25, seed: 9 });
const trainer = new Trainer(model, {
  maxSteps: Number(maxSteps), batchSize: 2, gradAccumulation: 2, lr: 5e-3, schedule: 'cosine', warmupSteps: 2,
  evalEvery: 3, outputDir: out, checkpointEvery: 1, keepCheckpoints: 2, logFile: `${out}/metrics.jsonl`, resume: 'auto',
});
trainer.on('step', (e) => console.log(`step ${e.step}`));
const r = await trainer.train(dataset);
console.log(`done ${r.steps} ${r.stopReason}`);
