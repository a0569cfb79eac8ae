// The training loop over the engine: micro-batches with gradient accumulation, a learning-rate
// schedule, AdamW, validation every N steps, early stopping that restores the best weights,
// checkpoints that resume bit for bit, a final test evaluation, events for UIs, an AbortSignal
// that stops with a checkpoint, and a NaN/Inf loss that stops with a clear error.
//
// Data parallelism: when a launcher started several ranks (lib/dist/), every rank runs this same
// loop on its share of each global micro-batch (lib/dist/share.ts); the optimizer step sums the
// gradients and token counts over the ranks in native code, the loop reduces the step's loss, and
// everything a rank could decide alone (a NaN, an abort, an early stop, a failed write) is decided
// together, so no rank waits in a collective the others never reach. Rank 0 writes the log, the
// checkpoints' shared parts and the exports.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { batches, type CountedBatch } from '../data/batches.js';
import type { Dataset, DataSplit } from '../data/dataset.js';
import { TunekitError } from '../errors.js';
import { classificationReport, type ClassificationReport } from '../eval/classification.js';
import type { Model } from '../model/load.js';
import type { Tensor } from '../tensor.js';
import { attempt, checkSame, settle } from '../dist/agree.js';
import { processGroup, type ProcessGroup } from '../dist/group.js';
import { rankShare } from '../dist/share.js';
import { parseOptions } from '../validate.js';
import {
  checkpointDir, layoutStamp, listCheckpoints, pruneCheckpoints, readOptimizerState, readTrainerState, saveCheckpoint, type CheckpointGroup,
  type TrainerState,
} from './checkpoint.js';
import { TrainerOptionsSchema, type TrainerConfig, type TrainerOptions } from './options.js';
import { scheduleFactor } from './schedule.js';

export interface StepEvent {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Labelled tokens in the step. */
  tokens: number;
  tokensPerSecond: number;
  /** Seconds spent training so far, over every segment of a resumed run. */
  elapsedSeconds: number;
  etaSeconds: number;
  /** The process's resident memory after the step, in bytes. */
  rssBytes: number;
}

export interface EvalResult {
  loss: number;
  perplexity: number;
  /** Labelled tokens evaluated (examples, for a classifier). */
  tokens: number;
  /** Classifiers: accuracy and macro F1 over the split, and the full report. */
  accuracy?: number;
  f1?: number;
  report?: ClassificationReport;
}

export interface EvalEvent extends EvalResult {
  step: number;
  split: string;
}

export type StopReason = 'completed' | 'max-steps' | 'early-stopping' | 'aborted';

export interface TrainResult {
  steps: number;
  stopReason: StopReason;
  /** The best validation evaluation (its weights are the model's at the end when restoreBest). */
  best: { step: number; value: number } | null;
  history: TrainerState['history'];
  /** Test split evaluation at the end, with the final weights. */
  test: EvalResult | null;
  /** The extra evaluation sets at the end. */
  evalSets: Record<string, EvalResult>;
  /** Seconds spent training, over every segment of a resumed run (this call's alone: segmentSeconds). */
  seconds: number;
  /** Seconds of this call. */
  segmentSeconds: number;
  /** The run's segments: 1, plus one for each time it was resumed. */
  segments: number;
}

export interface TrainCallOptions {
  /** Extra evaluation sets reported beside the validation split (e.g. general text, to watch forgetting). Default: none. */
  evalSets?: Record<string, DataSplit>;
  /** Stops at the next micro-batch boundary, writes a checkpoint (with outputDir) and resolves. Default: none. */
  signal?: AbortSignal;
}

export interface TrainerEvents {
  step: [StepEvent];
  eval: [EvalEvent];
  checkpoint: [{ step: number; dir: string }];
  /** Training continues from a checkpoint (resume), at the step it was written. */
  resume: [{ step: number; dir: string }];
  stop: [{ step: number; reason: StopReason }];
}

function padIdOf(model: Model): number {
  const t = model.tokenizer;
  const named = t?.padToken ? t.encode(t.padToken, { addSpecialTokens: false }) : [];
  return named.length === 1 ? named[0]! : (t?.eosTokenId ?? 0);
}

/** The class ids of a training split's labels: sorted label strings, at least two. */
export async function classesOf(split: DataSplit): Promise<Map<string, number>> {
  const seen = new Set<string>();
  for await (const ex of split.examples(0)) {
    if (ex.tags) {
      for (const t of ex.tags) if (t !== null) seen.add(t);
      continue;
    }
    if (ex.label === undefined) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${ex.where}: a classifier needs labelled examples (format "classification" or "token-classification")`);
    seen.add(String(ex.label));
  }
  const labels = [...seen].sort();
  if (labels.length < 2) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected at least two classes in the training split but found ${labels.length ? `only ${JSON.stringify(labels[0])}` : 'none'}`);
  return new Map(labels.map((l, i) => [l, i]));
}

/**
 * Mean loss and perplexity of the model over a split (forward only); with classes, accuracy and F1
 * too. With a group of several ranks (every rank calls it), each scores batchSize rows of every
 * global batch and the sums are reduced: every rank returns the whole split's figures.
 */
export async function evaluate(
  model: Model,
  split: DataSplit,
  o: { batchSize?: number; maxLength?: number; packing?: boolean; bf16?: boolean; classes?: ReadonlyMap<string, number>; group?: ProcessGroup } = {},
): Promise<EvalResult> {
  let sum = 0, tokens = 0;
  const per = o.batchSize ?? 4, world = o.group?.world ?? 1;
  const opts = { batchSize: per * world, maxLength: o.maxLength ?? 1024, packing: o.packing ?? false, padId: padIdOf(model), classes: o.classes };
  const truth: number[] = [], predicted: number[] = [];
  let failure: unknown;
  for await (const global of batches(split.examples(0), opts)) {
    const b = world > 1 ? rankShare(global, o.group!.rank, per) : global;
    if (b.inputIds.length === 0) continue;
    // With several ranks a failure is kept for the reduction below, so no rank is left waiting in it.
    const scored = model.evaluate(b, { bf16: o.bf16 ?? false });
    const r = world > 1 ? await scored.catch((e: unknown) => { failure ??= e; return null; }) : await scored;
    if (!r) continue;
    sum += r.loss * r.tokens;
    tokens += r.tokens;
    if (o.classes && r.logits) {
      const k = r.logits.shape[1]!;
      // Sequence heads: a label per row; token heads: per position (rows of logits in batch order).
      const flat = Array.isArray(b.labels[0]) ? (b.labels as number[][]).flat() : (b.labels as number[]);
      flat.forEach((label, i) => {
        if (label === -100) return;
        const row = r.logits!.data.subarray(i * k, (i + 1) * k);
        truth.push(label);
        predicted.push(row.indexOf(Math.max(...row)));
      });
    }
  }
  if (world > 1) {
    // The ranks' sums, and for a classifier the confusion counts (the report needs only those).
    await settle(o.group!, failure, 'in evaluation');
    const k = o.classes?.size ?? 0;
    const v = new Float64Array(2 + k * k);
    v[0] = sum, v[1] = tokens;
    truth.forEach((t, i) => { v[2 + t * k + predicted[i]!]! += 1; });
    await o.group!.allReduce(v);
    sum = v[0]!, tokens = v[1]!;
    truth.length = 0, predicted.length = 0;
    for (let t = 0; t < k; t++) for (let p = 0; p < k; p++) for (let c = 0; c < v[2 + t * k + p]!; c++) truth.push(t), predicted.push(p);
  }
  const loss = tokens ? sum / tokens : NaN;
  if (!o.classes || truth.length === 0) return { loss, perplexity: Math.exp(loss), tokens };
  const names = [...o.classes.keys()];
  const report = classificationReport(truth.map((t) => names[t]!), predicted.map((p) => names[p]!), names);
  return { loss, perplexity: Math.exp(loss), tokens, accuracy: report.accuracy, f1: report.macro.f1, report };
}

export class Trainer extends EventEmitter<TrainerEvents> {
  readonly options: TrainerConfig;
  constructor(readonly model: Model, options: TrainerOptions = {}) {
    super();
    this.options = parseOptions(TrainerOptionsSchema, options, 'Trainer');
    const o = this.options;
    if (o.checkpointEvery && !o.outputDir) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected outputDir for checkpointEvery');
    if ((o.resume === true || o.resume === 'auto') && !o.outputDir) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected outputDir to resume from');
  }

  /** Class ids by label, once a classifier's training data has been seen (or set by the caller). */
  classes: Map<string, number> | undefined;

  /** The ranks training together (rank 0 of 1 unless a launcher started several). */
  get group(): ProcessGroup {
    return processGroup();
  }

  // Global micro-batches: batchSize rows per rank.
  private batchOptions() {
    const o = this.options;
    return {
      batchSize: o.batchSize * this.group.world, maxLength: o.maxLength, packing: o.packing,
      padId: padIdOf(this.model), classes: this.classes,
    };
  }

  /**
   * Mean loss and perplexity over a split with the current weights (accuracy and F1 for a
   * classifier); with several ranks every rank calls it and scores its share.
   */
  evaluate(split: DataSplit): Promise<EvalResult> {
    const o = this.options;
    return evaluate(this.model, split, {
      batchSize: o.evalBatchSize ?? o.batchSize, maxLength: o.maxLength, packing: o.packing, classes: this.classes, bf16: o.bf16, group: this.group,
    });
  }

  /**
   * ULMFiT's per-group rates for an epoch: group i of G (bottom to top) at factor^-(G-1-i), and
   * with gradual unfreezing the groups below the top epoch+1 at 0 (they keep their weights).
   */
  private layerRates(epoch: number): { offset: number; length: number; scale: number }[] | undefined {
    const o = this.options;
    if (!o.discriminativeLr && !o.gradualUnfreezing) return undefined;
    const groups = this.model.paramGroups();
    const top = groups.length - 1;
    return groups.map((g, i) => ({
      offset: g.offset, length: g.length,
      scale: o.gradualUnfreezing && i < top - epoch ? 0 : o.discriminativeLr ? o.discriminativeLr ** -(top - i) : 1,
    }));
  }

  /**
   * Optimizer steps in one epoch (counts the batches of epoch 0; the count is the same every
   * epoch), and a digest of epoch 0's token ids (ranks compare it: the same data everywhere).
   */
  private async stepsPerEpoch(split: DataSplit): Promise<{ steps: number; digest: string }> {
    let n = 0;
    const hash = createHash('sha256');
    for await (const b of batches(split.examples(0), this.batchOptions())) {
      n++;
      if (this.group.world > 1) for (const row of b.inputIds) hash.update(Int32Array.from(row));
    }
    return { steps: Math.ceil(n / this.options.gradAccumulation), digest: hash.digest('hex') };
  }

  private async log(record: Record<string, unknown>): Promise<void> {
    if (!this.options.logFile || this.group.rank !== 0) return;
    await mkdir(dirname(this.options.logFile), { recursive: true });
    await appendFile(this.options.logFile, JSON.stringify(record) + '\n');
  }

  // A run resumed from the checkpoint of `step` redoes the steps after it: their records, logged
  // before the run stopped, are dropped so that the log holds each step once. The file is
  // replaced whole (written beside it, then renamed), so a crash here loses nothing.
  private async trimLog(step: number): Promise<void> {
    const file = this.options.logFile;
    if (!file || !existsSync(file) || this.group.rank !== 0) return;
    const kept = (await readFile(file, 'utf8')).split('\n').filter((line) => {
      if (!line.trim()) return false;
      try {
        const r = JSON.parse(line) as { step?: unknown };
        return typeof r.step !== 'number' || r.step <= step;
      } catch {
        return true; // not ours to judge: keep it
      }
    });
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, kept.map((l) => l + '\n').join(''));
    await rename(tmp, file);
  }

  async train(data: Dataset | DataSplit, call: TrainCallOptions = {}): Promise<TrainResult> {
    const o = this.options, model = this.model;
    if (model.trainable === 'none') {
      throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected a model with something to train: call model.addLora() or model.enableFullTraining() first');
    }
    const train = 'train' in data ? data.train : data;
    const validation = 'train' in data ? data.validation : null;
    const test = 'train' in data ? data.test : null;
    const started = performance.now();
    const group = this.group, dist = group.world > 1, rank = group.rank;
    const reducesInBackward = dist && (o.distributed?.zero ?? 1) === 2;
    const head = model.classifier;
    let perEpoch = 0;
    let state: TrainerState = {
      version: 1, step: 0, epoch: 0, position: 0, rng: { epoch: 0 }, trainable: model.trainable, lora: model.lora,
      best: null, sinceBest: 0, history: { train: [], eval: [] }, options: { ...o, resume: undefined },
    };
    // Only the best parameters are kept in memory (the moments at restore time are the current ones).
    let bestParams: Tensor<'f32'> | null = null;
    let resumedFrom: string | undefined;
    let digest = '';
    // Setup: what a rank can fail at alone is settled together before the first collective step.
    const setup = await attempt(async () => {
      if (head) {
        if (o.packing) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected packing: false with a classifier (one example per row)');
        this.classes ??= await classesOf(train);
        if (this.classes.size !== head.classes) {
          throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `The classifier has ${head.classes} classes but the training split has ${this.classes.size} labels (${[...this.classes.keys()].join(', ')})`);
        }
      }
      ({ steps: perEpoch, digest } = await this.stepsPerEpoch(train));
      if (perEpoch === 0) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'The training split holds no examples');
      // Each rank keeps its shard of the optimizer state from here on (a no-op in a plain run).
      if (dist) model.native.shardTraining({ stage: o.distributed?.zero ?? 1 });
      if (!o.resume) return;
      const newest = o.resume === true || o.resume === 'auto';
      const dir = newest ? (await listCheckpoints(o.outputDir!)).at(-1)?.dir : (o.resume as string);
      if (!dir && o.resume === true) {
        throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${o.outputDir}: no checkpoint to resume from (resume: true). Start without resume, or pass resume: 'auto' to start fresh when there is none`);
      }
      if (!dir) return;
      state = await readTrainerState(dir);
      if (state.trainable !== model.trainable || JSON.stringify(state.lora) !== JSON.stringify(model.lora)) {
        throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${dir}: the checkpoint was trained with ${state.trainable} ${JSON.stringify(state.lora)}, but the model has ${model.trainable} ${JSON.stringify(model.lora)}`);
      }
      const saved = await readOptimizerState(dir);
      if (saved.layout !== undefined && saved.layout !== layoutStamp(model)) {
        throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${dir}: the checkpoint's trainable tensors are laid out differently from this model's (written by another tunekit version, or for another model); resuming would put its values in the wrong places. Start without resume, or resume with the version that wrote it`);
      }
      model.setOptimizerState(saved); // whole moments (from any world size): this rank keeps its shard
      const bestDir = o.outputDir ? join(o.outputDir, 'best') : null;
      if (state.best && bestDir) bestParams = (await readOptimizerState(bestDir).catch(() => null))?.params ?? null;
      await this.trimLog(state.step);
      resumedFrom = dir;
    });
    await settle(group, setup, 'to start training');
    if (dist) {
      // Every rank must run the same job: a mismatch would train silently wrong, or hang.
      const { resume: _resume, ...options } = o;
      await checkSame(group, {
        options: JSON.stringify(options),
        model: JSON.stringify([layoutStamp(model), model.config ?? null]),
        'trainable weights': createHash('sha256').update(model.trainableParams().data).digest('hex'),
        data: digest,
        'resume point': String(state.step),
      });
    }
    // Time and segments continue from the checkpoint: the steps redone after it are counted once.
    const before = state.seconds ?? 0;
    state.segments = resumedFrom ? (state.segments ?? 1) + 1 : 1;
    const elapsed = () => before + (performance.now() - started) / 1000;
    if (resumedFrom) {
      this.emit('resume', { step: state.step, dir: resumedFrom });
      await this.log({ type: 'resume', step: state.step, dir: resumedFrom, segment: state.segments, seconds: before });
    }
    const totalSteps = o.maxSteps ?? perEpoch * o.epochs;
    const warmupSteps = o.warmupSteps ?? Math.ceil((o.warmupRatio ?? 0) * totalSteps);
    const schedule = { name: o.schedule, totalSteps, warmupSteps, cutFraction: o.cutFraction, ratio: o.ratio };
    // The shared temporary folder of checkpoints written by several ranks is named by rank 0's pid.
    const writers: CheckpointGroup | undefined = dist ? { group, tag: (await group.broadcast(Float64Array.of(process.pid), 0))[0]! } : undefined;

    let stopReason: StopReason = 'completed';
    const stepTimes: number[] = [];
    const saveTo = async (dir: string) => {
      state.seconds = elapsed();
      await saveCheckpoint(model, state, dir, false, writers);
      this.emit('checkpoint', { step: state.step, dir });
      await this.log({ type: 'checkpoint', step: state.step, dir });
    };

    // Validation, early-stopping bookkeeping; returns true when training should stop (the same on
    // every rank: the metrics are reduced before anything is decided).
    const validate = async (): Promise<boolean> => {
      const sets: [string, DataSplit][] = [...(validation ? [['validation', validation] as [string, DataSplit]] : []), ...Object.entries(call.evalSets ?? {})];
      let stop = false;
      for (const [name, split] of sets) {
        const r = await this.evaluate(split);
        const { report: _report, ...figures } = r;
        const event: EvalEvent = { step: state.step, split: name, ...r };
        state.history.eval.push({ step: state.step, split: name, ...figures });
        this.emit('eval', event);
        await this.log({ type: 'eval', step: state.step, split: name, ...figures });
        if (name !== 'validation') continue;
        const es = o.earlyStopping;
        const metric = es?.metric ?? 'loss';
        if ((metric === 'accuracy' || metric === 'f1') && r[metric] === undefined) {
          throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a classifier for earlyStopping.metric "${metric}"`);
        }
        const value = metric === 'perplexity' ? r.perplexity : metric === 'loss' ? r.loss : r[metric]!;
        const mode = es?.mode ?? (metric === 'accuracy' || metric === 'f1' ? 'max' : 'min'), delta = es?.minDelta ?? 0;
        const better = !state.best || (mode === 'min' ? value < state.best.value - delta : value > state.best.value + delta);
        if (better) {
          state.best = { step: state.step, value };
          state.sinceBest = 0;
          bestParams = model.trainableParams();
          state.seconds = elapsed();
          if (o.outputDir) await saveCheckpoint(model, state, join(o.outputDir, 'best'), true, writers);
        } else {
          state.sinceBest++;
          if (es && state.sinceBest >= es.patience) stop = true;
        }
      }
      return stop;
    };

    outer: for (let epoch = state.epoch; o.maxSteps !== undefined || epoch < o.epochs; epoch++) {
      const skip = epoch === state.epoch ? state.position : 0;
      const it = batches(train.examples(epoch), this.batchOptions(), skip)[Symbol.asyncIterator]();
      let next = await it.next();
      if (next.done && skip === 0) break;
      while (!next.done) {
        if (o.maxSteps !== undefined && state.step >= o.maxSteps) {
          stopReason = 'max-steps'; // a resumed run that had already finished: nothing left to do
          break outer;
        }
        const window: CountedBatch[] = [];
        while (!next.done && window.length < o.gradAccumulation) {
          window.push(next.value);
          next = await it.next();
        }
        const lastOfEpoch = next.done;
        const t0 = performance.now();
        // Global micro-batches: every rank sees the same ones, so the counts need no message.
        const targets = window.reduce((a, b) => a + b.targets, 0);
        let lossSum = 0, failure: unknown;
        for (const [micro, global] of window.entries()) {
          if (!dist && call.signal?.aborted) {
            stopReason = 'aborted';
            break outer; // the model still holds the weights of the last finished step
          }
          const b = dist ? rankShare(global, rank, o.batchSize) : global;
          if (b.targets === 0 || failure !== undefined) {
            // ZeRO-2 reduces each micro-batch during its backward: a rank with nothing to add (or
            // that already failed) still takes part, so that the others' reductions complete.
            if (reducesInBackward && global.targets > 0) {
              const passed = await attempt(() => model.native.passGradients());
              failure ??= passed;
            }
            continue;
          }
          // Dropout masks from (adapter seed, step, micro-batch, rank): a resumed run draws the same ones.
          const seed = ((((model.lora?.seed ?? 0) * 1_000_003 + state.step) * 4096 + micro) * (dist ? 1024 : 1) + rank) % Number.MAX_SAFE_INTEGER;
          try {
            const r = await model.trainStep(b, { bf16: o.bf16, checkpoint: o.activationCheckpointing, seed });
            if (!Number.isFinite(r.loss) || !Number.isFinite(r.gradNorm)) {
              throw new TunekitError('ERR_TUNEKIT_NUMERIC', `The loss became ${Number.isFinite(r.loss) ? `finite but the gradient norm ${r.gradNorm}` : r.loss} at step ${state.step + 1} (epoch ${epoch}); training stopped before the update, the last checkpoint is intact. Try a lower lr, bf16: false or maxGradNorm.`);
            }
            lossSum += r.loss * r.tokens;
          } catch (e) {
            if (!dist) throw e;
            failure = e;
          }
        }
        if (dist) {
          // One small all-reduce per step: the loss sum, and whether any rank failed or was asked to stop.
          await settle(group, failure, `at step ${state.step + 1}`);
          const v = await group.allReduce(Float64Array.of(lossSum, call.signal?.aborted ? 1 : 0));
          lossSum = v[0]!;
          if (v[1]! > 0) {
            stopReason = 'aborted';
            break outer;
          }
        }
        if (targets === 0) continue;
        const lr = o.lr * scheduleFactor(schedule, state.step);
        const lrScales = this.layerRates(epoch);
        const { gradNorm } = await model.optimizerStep({ lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm, lrScales });
        state.step++;
        state.epoch = lastOfEpoch ? epoch + 1 : epoch;
        state.position = lastOfEpoch ? 0 : window.at(-1)!.position;
        state.rng = { epoch: state.epoch };
        const seconds = (performance.now() - t0) / 1000;
        stepTimes.push(seconds);
        const recent = stepTimes.slice(-20), avg = recent.reduce((a, b) => a + b, 0) / recent.length;
        const event: StepEvent = {
          step: state.step, totalSteps, epoch, loss: lossSum / targets, lr, gradNorm, tokens: targets,
          tokensPerSecond: window.reduce((a, b) => a + b.inputIds.length * b.inputIds[0]!.length, 0) / seconds,
          elapsedSeconds: elapsed(), etaSeconds: avg * (totalSteps - state.step), rssBytes: process.memoryUsage.rss(),
        };
        state.history.train.push({ step: event.step, epoch, loss: event.loss, lr, gradNorm });
        this.emit('step', event);
        await this.log({ type: 'step', ...event });
        const evalNow = o.evalEvery ? state.step % o.evalEvery === 0 : lastOfEpoch;
        const stop = evalNow && (validation || call.evalSets) ? await validate() : false;
        const done = o.maxSteps !== undefined && state.step >= o.maxSteps;
        if (o.outputDir && (stop || done || (o.checkpointEvery && state.step % o.checkpointEvery === 0))) {
          await saveTo(checkpointDir(o.outputDir, state.step));
          if (rank === 0) await pruneCheckpoints(o.outputDir, o.keepCheckpoints);
        }
        if (stop) {
          stopReason = 'early-stopping';
          break outer;
        }
        if (done) {
          stopReason = 'max-steps';
          break outer;
        }
        // With several ranks an abort is decided at the next step's reduction, by all together.
        if (!dist && call.signal?.aborted) {
          stopReason = 'aborted';
          break outer;
        }
      }
    }
    if (stopReason === 'aborted') {
      // Partial gradients of an unfinished accumulation window are dropped: resume redoes it.
      const s = model.optimizerState();
      model.setOptimizerState({ params: s.params, m: s.m, v: s.v, step: s.step });
      if (o.outputDir) await saveTo(checkpointDir(o.outputDir, state.step));
    }
    this.emit('stop', { step: state.step, reason: stopReason });
    await this.log({ type: 'stop', step: state.step, reason: stopReason, seconds: elapsed(), segments: state.segments });
    if (o.restoreBest && bestParams && state.best && state.best.step !== state.step) {
      const now = model.optimizerState();
      model.setOptimizerState({ params: bestParams, m: now.m, v: now.v, step: now.step });
    }
    const final: Record<string, EvalResult> = {};
    for (const [name, split] of Object.entries(call.evalSets ?? {})) final[name] = await this.evaluate(split);
    const testResult = test && stopReason !== 'aborted' ? await this.evaluate(test) : null;
    if (testResult) await this.log({ type: 'test', step: state.step, ...testResult, report: undefined });
    return {
      steps: state.step, stopReason, best: state.best, history: state.history, test: testResult, evalSets: final,
      seconds: elapsed(), segmentSeconds: (performance.now() - started) / 1000, segments: state.segments,
    };
  }
}
