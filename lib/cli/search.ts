// `tunekit search config`: hyperparameter search over a job's settings on one loaded model. The
// job's `search` section says what to search; every trial trains the job's LoRA adapters afresh
// with early stopping on the validation split. Writes search.json (every trial; read back to
// resume) and best.json — the job with the winning settings, ready for `tunekit train best.json`.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TunekitError } from '../errors.js';
import { loadModel } from '../model/load.js';
import { setRuntimeOptions } from '../runtime.js';
import { searchHyperparameters, withParams, type Params, type SearchOptions, type SearchResult } from '../search/search.js';
import { Trainer } from '../train/trainer.js';
import { jobLoadOptions, type Job } from './config.js';
import { loadJobData } from './run.js';

const SHORT: Record<string, string> = {
  lr: 'training.lr', batchSize: 'training.batchSize', epochs: 'training.epochs', weightDecay: 'training.weightDecay',
  gradAccumulation: 'training.gradAccumulation', warmupRatio: 'training.warmupRatio', r: 'lora.r', alpha: 'lora.alpha', dropout: 'lora.dropout',
};

export interface SearchRun extends SearchResult {
  bestJob: Job;
  files: { results: string; best: string };
}

export async function runSearch(job: Job, search: SearchOptions, log: (m: string) => void = () => {}): Promise<SearchRun> {
  if (job.method === 'full') throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', 'Search shares one loaded model across trials, so it covers lora and qlora jobs');
  const space = Object.fromEntries(Object.entries(search.space ?? {}).map(([k, v]) => {
    const path = SHORT[k] ?? k;
    if (!/^(training|lora)\./.test(path)) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected search.space keys among training.*, lora.* (or ${Object.keys(SHORT).join(', ')}) but received ${k}`);
    return [path, v];
  }));
  if (job.threads) setRuntimeOptions({ threads: job.threads });
  const model = await loadModel(job.model, jobLoadOptions(job));
  const { dataset } = await loadJobData(job, model);
  if (!dataset.validation) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Search compares validation results: set data.validation in the job');
  await mkdir(job.output, { recursive: true });
  const files = { results: join(job.output, 'search.json'), best: join(job.output, 'best.json') };
  const metric = search.metric ?? 'loss';
  const objective = async (params: Params, budget: number | null) => {
    const trial = withParams(job, params);
    const { autoTargets: _auto, targets, ...lora } = trial.lora;
    if (targets === 'auto') throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', 'Search needs explicit lora.targets (rank them once with rankParameterImportance)');
    model.addLora({ ...lora, targets });
    const t = trial.training;
    const trainer = new Trainer(model, {
      ...t, ...(budget ? { maxSteps: budget, evalEvery: Math.max(1, Math.floor(budget / 4)) } : {}),
      earlyStopping: { patience: 3, ...t.earlyStopping, metric }, restoreBest: true, resume: false,
    });
    const r = await trainer.train(dataset);
    const value = r.best?.value ?? (await trainer.evaluate(dataset.validation!))[metric] ?? NaN;
    return { value, steps: r.steps };
  };
  const result = await searchHyperparameters({ ...search, space, stateFile: files.results }, objective, (t, resumed) =>
    log(`${resumed ? 'resumed' : 'trial'} ${JSON.stringify(t.params)}${t.budget ? ` budget ${t.budget}` : ''}: ${metric} ${t.value.toFixed(4)} (${t.steps} steps, ${t.seconds.toFixed(1)} s)`));
  const bestJob = withParams(job, result.best.params);
  await writeFile(files.best, JSON.stringify({ ...bestJob, search: undefined }, null, 2) + '\n');
  return { ...result, bestJob, files };
}
