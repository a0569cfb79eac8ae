// One training job from a config: load the model and data, add adapters (or train in full),
// train with validation, checkpoints and metrics, export, and write the HTML report. The CLI and
// `npm run demo` both run jobs through here.
//
// Under a launcher (mpirun -np N tunekit train job.yaml) every rank runs the job: each loads the
// model and data and trains its share (lib/train/trainer.ts); rank 0 alone claims the output
// folder, logs, writes the metrics, the exports and the report.
import { existsSync } from 'node:fs';
import { appendFile, mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { loadDataset, type Dataset, type DataSplit } from '../data/dataset.js';
import { saveGgufLora } from '../export/gguf-lora.js';
import { saveMergedModel } from '../export/merge.js';
import { savePeftAdapter } from '../export/peft.js';
import { TunekitError } from '../errors.js';
import { loadModel, type Model } from '../model/load.js';
import { setRuntimeOptions } from '../runtime.js';
import { rankParameterImportance } from '../methods/importance.js';
import { listCheckpoints } from '../train/checkpoint.js';
import { attempt, settle } from '../dist/agree.js';
import { processGroup } from '../dist/group.js';
import { Trainer, type EvalResult, type StepEvent, type TrainResult } from '../train/trainer.js';
import { jobLoadOptions, type Job } from './config.js';
import { writeReport } from './report.js';

export interface JobPaths {
  output: string;
  checkpoints: string;
  metrics: string;
  report: string;
  adapter?: string;
  ggufAdapter?: string;
  merged?: string;
}

export interface JobResult {
  model: Model;
  dataset: Dataset;
  before: EvalResult | null;
  result: TrainResult;
  paths: JobPaths;
  trainableParameters: number;
}

export interface JobHooks {
  /** Continue the run in the output folder from its newest checkpoint (refused when it has none). */
  resume?: boolean;
  /** Delete the run in the output folder (checkpoints, metrics) and start over. Without it or
   *  `resume`, an output folder that holds a run is refused, so that no run is lost by mistake. */
  overwrite?: boolean;
  signal?: AbortSignal;
  onStep?: (e: StepEvent) => void;
  log?: (message: string) => void;
  /** Runs after the model and data are ready, before training (e.g. to show samples "before"). */
  beforeTraining?: (model: Model, dataset: Dataset) => Promise<void>;
}

export async function loadJobModel(job: Job): Promise<Model> {
  if (job.threads) setRuntimeOptions({ threads: job.threads });
  const model = await loadModel(job.model, jobLoadOptions(job));
  if (!model.tokenizer) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${job.model}: the model has no tokenizer (tokenizer.json), which training on text needs`);
  return model;
}

/** Adds the job's adapters (or full training); "auto" targets come from an importance ranking on a separate load of the model. */
export async function setupTrainable(job: Job, model: Model, dataset: Dataset, log: (m: string) => void = () => {}): Promise<number> {
  if (job.method === 'full') return model.enableFullTraining();
  const { autoTargets, targets, ...lora } = job.lora;
  if (targets !== 'auto') return model.addLora({ ...lora, targets });
  const probe = await loadModel(job.model);
  const ranking = await rankParameterImportance(probe, dataset.train, { batches: 8, batchSize: job.training.batchSize, maxLength: job.training.maxLength, targets: autoTargets });
  log(`LoRA targets by importance (|gradient x weight| over ${ranking.batches} batches): ${ranking.suggestedTargets.join(', ')}`);
  return model.addLora({ ...lora, targets: ranking.suggestedTargets });
}

export async function loadJobData(job: Job, model: Model): Promise<{ dataset: Dataset; evalSets: Record<string, DataSplit> }> {
  const { path, evalSets, ...options } = job.data;
  const dataset = await loadDataset(path, model.tokenizer!, options);
  const extra: Record<string, DataSplit> = {};
  for (const [name, p] of Object.entries(evalSets ?? {})) {
    extra[name] = (await loadDataset(p, model.tokenizer!, { ...options, validation: 0, test: 0, shuffle: false })).train;
  }
  return { dataset, evalSets: extra };
}

/**
 * Makes the output folder ready for this run: a new run only into a folder that holds none (or
 * with `overwrite`, after deleting it), a resumed one only from a checkpoint that is there.
 */
async function claimOutput(paths: JobPaths, hooks: JobHooks, log: (m: string) => void): Promise<void> {
  if (hooks.resume && hooks.overwrite) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected --resume or --overwrite, not both');
  const newest = (await listCheckpoints(paths.checkpoints)).at(-1);
  const metrics = existsSync(paths.metrics);
  if (hooks.resume) {
    if (!newest) {
      throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${paths.checkpoints}: no checkpoint to resume from. Run without --resume to start a new run${metrics ? ` (with --overwrite: ${paths.metrics} holds an earlier run's metrics)` : ''}`);
    }
    return;
  }
  if (newest || metrics) {
    const held = newest ? `checkpoints up to step ${newest.step} in ${paths.checkpoints}` : `the metrics of an earlier run in ${paths.metrics}`;
    if (!hooks.overwrite) {
      throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${paths.output} holds a run (${held}). Pass --resume to continue it, or --overwrite to delete it and start over`);
    }
    log(`--overwrite: deleting ${held}`);
  }
  await mkdir(paths.output, { recursive: true });
  await rm(paths.checkpoints, { recursive: true, force: true });
  await rm(paths.metrics, { force: true });
}

/** The title of a job's report and dashboard. */
export const jobTitle = (job: Job) => `tunekit: ${job.method} fine-tuning of ${basename(job.model)}`;

const appendRecord = (file: string, record: Record<string, unknown>) => appendFile(file, JSON.stringify(record) + '\n');

/** The 'run' record of a segment: the settings and data counts the report and the dashboard show. */
function runRecord(job: Job, model: Model, dataset: Dataset, trainable: number, ranks: number, resumed: boolean): Record<string, unknown> {
  const t = job.training, s = dataset.stats;
  return {
    type: 'run', resumed, startedAt: new Date().toISOString(), model: job.model, method: job.method, trainableParameters: trainable,
    architecture: model.config.architecture, layers: model.config.layers, dim: model.config.dim,
    config: {
      lr: t.lr, schedule: t.schedule, warmupSteps: t.warmupSteps, warmupRatio: t.warmupRatio, batchSize: t.batchSize, ranks, gradAccumulation: t.gradAccumulation,
      epochs: t.epochs, maxSteps: t.maxSteps, maxLength: t.maxLength, packing: t.packing, bf16: t.bf16, weightDecay: t.weightDecay, maxGradNorm: t.maxGradNorm,
      earlyStopping: t.earlyStopping, lora: job.method === 'full' ? undefined : model.lora,
    },
    data: {
      path: job.data.path, format: dataset.format, records: s.records,
      train: s.examples.train, validation: s.examples.validation, test: s.examples.test, skipped: s.skipped,
    },
  };
}

export async function runJob(job: Job, hooks: JobHooks = {}): Promise<JobResult> {
  const group = processGroup(), lead = group.rank === 0;
  const log = lead ? (hooks.log ?? (() => {})) : () => {};
  const paths: JobPaths = { output: job.output, checkpoints: join(job.output, 'checkpoints'), metrics: join(job.output, 'metrics.jsonl'), report: join(job.output, 'report.html') };
  // Rank 0 judges and prepares the folder; the others wait for its verdict (and share its error).
  await settle(group, await attempt(async () => { if (lead) await claimOutput(paths, hooks, log); }), 'to claim the output folder');
  if (group.world > 1) log(`${group.world} ranks (${group.launcher}, ${group.engine}), ZeRO stage ${job.training.distributed?.zero ?? 1}; global batch ${job.training.batchSize * group.world * job.training.gradAccumulation} rows`);
  const model = await loadJobModel(job);
  const { dataset, evalSets } = await loadJobData(job, model);
  const s = dataset.stats;
  log(`data: ${s.records} records -> ${s.examples.train} train / ${s.examples.validation} validation / ${s.examples.test} test examples (${dataset.format}); skipped ${JSON.stringify(s.skipped)}`);
  const trainable = await setupTrainable(job, model, dataset, log);
  log(`model ${job.model}: ${model.config.layers} layers, dim ${model.config.dim}; ${job.method}, ${trainable.toLocaleString('en-US')} trainable parameters`);
  await hooks.beforeTraining?.(model, dataset);
  // The run's configuration and data, once per segment: what the report and dashboard show.
  if (lead) await appendRecord(paths.metrics, runRecord(job, model, dataset, trainable, group.world, hooks.resume === true));
  const trainer = new Trainer(model, { ...job.training, outputDir: paths.checkpoints, logFile: paths.metrics, resume: hooks.resume ?? false });
  trainer.on('resume', (e) => log(`resumed from ${e.dir} at step ${e.step}`));
  let before: EvalResult | null = null;
  if (dataset.validation && !hooks.resume) {
    before = await trainer.evaluate(dataset.validation);
    if (lead) await appendRecord(paths.metrics, { type: 'eval', step: 0, split: 'validation', ...before, report: undefined });
    log(`validation before training: loss ${before.loss.toFixed(4)}, perplexity ${before.perplexity.toFixed(2)}`);
  }
  if (hooks.onStep && lead) trainer.on('step', hooks.onStep);
  trainer.on('eval', (e) => log(`step ${e.step} ${e.split}: loss ${e.loss.toFixed(4)}, perplexity ${e.perplexity.toFixed(2)}`));
  const result = await trainer.train(dataset, { evalSets, signal: hooks.signal });
  log(`stopped after ${result.steps} steps (${result.stopReason}) in ${result.seconds.toFixed(0)} s${result.best ? `; best validation ${result.best.value.toFixed(4)} at step ${result.best.step}` : ''}`);
  if (!lead) return { model, dataset, before, result, paths, trainableParameters: trainable };
  if (result.stopReason !== 'aborted') {
    if (job.method !== 'full' && job.export.peft) await savePeftAdapter(model, (paths.adapter = join(job.output, 'adapter')), { baseModel: job.model });
    if (job.method !== 'full' && job.export.gguf) await saveGgufLora(model, (paths.ggufAdapter = join(job.output, 'adapter.gguf')));
    if (job.export.merged || job.method === 'full') await saveMergedModel(model, (paths.merged = join(job.output, 'merged')));
  }
  const exports = Object.fromEntries(Object.entries({ 'PEFT adapter': paths.adapter, 'GGUF adapter': paths.ggufAdapter, 'merged model': paths.merged }).filter(([, v]) => v));
  await appendRecord(paths.metrics, {
    type: 'result', step: result.steps, stopReason: result.stopReason, seconds: result.seconds, segments: result.segments, best: result.best,
    test: result.test && { loss: result.test.loss, perplexity: result.test.perplexity }, evalSets: Object.fromEntries(Object.entries(result.evalSets).map(([k, v]) => [k, { loss: v.loss, perplexity: v.perplexity }])), exports,
  });
  await writeReport(paths.metrics, paths.report, jobTitle(job));
  return { model, dataset, before, result, paths, trainableParameters: trainable };
}
