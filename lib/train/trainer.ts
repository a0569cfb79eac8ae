// The training loop over the engine: micro-batches with gradient accumulation, a learning-rate
// schedule, AdamW, validation every N steps, early stopping that restores the best weights,
// checkpoints that resume bit for bit, a final test evaluation, events for UIs, an AbortSignal
// that stops with a checkpoint, and a NaN/Inf loss that stops with a clear error.
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
import { parseOptions } from '../validate.js';
import {
  checkpointDir, layoutStamp, listCheckpoints, pruneCheckpoints, readOptimizerState, readTrainerState, saveCheckpoint, type TrainerState,
} from './checkpoint.js';
import { TrainerOptions, type TrainerConfig, type TrainerOptionsInput } from './options.js';
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
  elapsedSeconds: number;
  etaSeconds: number;
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
  seconds: number;
}

export interface TrainCallOptions {
  /** Extra evaluation sets reported beside the validation split (e.g. general text, to watch forgetting). */
  evalSets?: Record<string, DataSplit>;
  /** Stops at the next micro-batch boundary, writes a checkpoint (with outputDir) and resolves. */
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

/** Mean loss and perplexity of the model over a split (forward only); with classes, accuracy and F1 too. */
export async function evaluate(
  model: Model,
  split: DataSplit,
  o: { batchSize?: number; maxLength?: number; packing?: boolean; bf16?: boolean; classes?: ReadonlyMap<string, number> } = {},
): Promise<EvalResult> {
  let sum = 0, tokens = 0;
  const opts = { batchSize: o.batchSize ?? 4, maxLength: o.maxLength ?? 1024, packing: o.packing ?? false, padId: padIdOf(model), classes: o.classes };
  const truth: number[] = [], predicted: number[] = [];
  for await (const b of batches(split.examples(0), opts)) {
    const r = await model.evaluate(b, { bf16: o.bf16 ?? false });
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
  const loss = tokens ? sum / tokens : NaN;
  if (!o.classes || truth.length === 0) return { loss, perplexity: Math.exp(loss), tokens };
  const names = [...o.classes.keys()];
  const report = classificationReport(truth.map((t) => names[t]!), predicted.map((p) => names[p]!), names);
  return { loss, perplexity: Math.exp(loss), tokens, accuracy: report.accuracy, f1: report.macro.f1, report };
}

export class Trainer extends EventEmitter<TrainerEvents> {
  readonly options: TrainerConfig;
  constructor(readonly model: Model, options: TrainerOptionsInput = {}) {
    super();
    this.options = parseOptions(TrainerOptions, options, 'Trainer');
    const o = this.options;
    if (o.checkpointEvery && !o.outputDir) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected outputDir for checkpointEvery');
    if ((o.resume === true || o.resume === 'auto') && !o.outputDir) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected outputDir to resume from');
  }

  /** Class ids by label, once a classifier's training data has been seen (or set by the caller). */
  classes: Map<string, number> | undefined;

  private batchOptions(evaluation = false) {
    const o = this.options;
    return {
      batchSize: evaluation ? (o.evalBatchSize ?? o.batchSize) : o.batchSize, maxLength: o.maxLength, packing: o.packing, padId: padIdOf(this.model),
      classes: this.classes,
    };
  }

  /** Mean loss and perplexity over a split with the current weights (accuracy and F1 for a classifier). */
  evaluate(split: DataSplit): Promise<EvalResult> {
    const b = this.batchOptions(true);
    return evaluate(this.model, split, { ...b, bf16: this.options.bf16 });
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

  /** Optimizer steps in one epoch (counts the batches of epoch 0; the count is the same every epoch). */
  private async stepsPerEpoch(split: DataSplit): Promise<number> {
    let n = 0;
    for await (const _ of batches(split.examples(0), this.batchOptions())) n++;
    return Math.ceil(n / this.options.gradAccumulation);
  }

  private async log(record: Record<string, unknown>): Promise<void> {
    if (!this.options.logFile) return;
    await mkdir(dirname(this.options.logFile), { recursive: true });
    await appendFile(this.options.logFile, JSON.stringify(record) + '\n');
  }

  // A run resumed from the checkpoint of `step` redoes the steps after it: their records, logged
  // before the run stopped, are dropped so that the log holds each step once. The file is
  // replaced whole (written beside it, then renamed), so a crash here loses nothing.
  private async trimLog(step: number): Promise<void> {
    const file = this.options.logFile;
    if (!file || !existsSync(file)) return;
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
    const head = model.classifier;
    if (head) {
      if (o.packing) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected packing: false with a classifier (one example per row)');
      this.classes ??= await classesOf(train);
      if (this.classes.size !== head.classes) {
        throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `The classifier has ${head.classes} classes but the training split has ${this.classes.size} labels (${[...this.classes.keys()].join(', ')})`);
      }
    }
    const perEpoch = await this.stepsPerEpoch(train);
    if (perEpoch === 0) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'The training split holds no examples');
    const totalSteps = o.maxSteps ?? perEpoch * o.epochs;
    const warmupSteps = o.warmupSteps ?? Math.ceil((o.warmupRatio ?? 0) * totalSteps);
    const schedule = { name: o.schedule, totalSteps, warmupSteps, cutFraction: o.cutFraction, ratio: o.ratio };

    let state: TrainerState = {
      version: 1, step: 0, epoch: 0, position: 0, rng: { epoch: 0 }, trainable: model.trainable, lora: model.lora,
      best: null, sinceBest: 0, history: { train: [], eval: [] }, options: { ...o, resume: undefined },
    };
    // Only the best parameters are kept in memory (the moments at restore time are the current ones).
    let bestParams: Tensor<'f32'> | null = null;
    if (o.resume) {
      const newest = o.resume === true || o.resume === 'auto';
      const dir = newest ? (await listCheckpoints(o.outputDir!)).at(-1)?.dir : (o.resume as string);
      if (!dir && o.resume === true) {
        throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${o.outputDir}: no checkpoint to resume from (resume: true). Start without resume, or pass resume: 'auto' to start fresh when there is none`);
      }
      if (dir) {
        state = await readTrainerState(dir);
        if (state.trainable !== model.trainable || JSON.stringify(state.lora) !== JSON.stringify(model.lora)) {
          throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${dir}: the checkpoint was trained with ${state.trainable} ${JSON.stringify(state.lora)}, but the model has ${model.trainable} ${JSON.stringify(model.lora)}`);
        }
        const saved = await readOptimizerState(dir);
        if (saved.layout !== undefined && saved.layout !== layoutStamp(model)) {
          throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${dir}: the checkpoint's trainable tensors are laid out differently from this model's (written by another tunekit version, or for another model); resuming would put its values in the wrong places. Start without resume, or resume with the version that wrote it`);
        }
        model.setOptimizerState(saved);
        const bestDir = o.outputDir ? join(o.outputDir, 'best') : null;
        if (state.best && bestDir) bestParams = (await readOptimizerState(bestDir).catch(() => null))?.params ?? null;
        await this.trimLog(state.step);
        this.emit('resume', { step: state.step, dir });
      }
    }

    let stopReason: StopReason = 'completed';
    const stepTimes: number[] = [];
    const saveTo = async (dir: string) => {
      await saveCheckpoint(model, state, dir);
      this.emit('checkpoint', { step: state.step, dir });
    };

    // Validation, early-stopping bookkeeping; returns true when training should stop.
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
          if (o.outputDir) await saveCheckpoint(model, state, join(o.outputDir, 'best'), true);
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
        const targets = window.reduce((a, b) => a + b.targets, 0);
        let lossSum = 0;
        for (const [micro, b] of window.entries()) {
          if (call.signal?.aborted) {
            stopReason = 'aborted';
            break outer; // the model still holds the weights of the last finished step
          }
          if (b.targets === 0) continue;
          // Dropout masks from (adapter seed, step, micro-batch): a resumed run draws the same ones.
          const seed = (((model.lora?.seed ?? 0) * 1_000_003 + state.step) * 4096 + micro) % Number.MAX_SAFE_INTEGER;
          const r = await model.trainStep(b, { bf16: o.bf16, checkpoint: o.activationCheckpointing, seed });
          if (!Number.isFinite(r.loss) || !Number.isFinite(r.gradNorm)) {
            throw new TunekitError('ERR_TUNEKIT_NUMERIC', `The loss became ${Number.isFinite(r.loss) ? `finite but the gradient norm ${r.gradNorm}` : r.loss} at step ${state.step + 1} (epoch ${epoch}); training stopped before the update, the last checkpoint is intact. Try a lower lr, bf16: false or maxGradNorm.`);
          }
          lossSum += r.loss * r.tokens;
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
          elapsedSeconds: (performance.now() - started) / 1000, etaSeconds: avg * (totalSteps - state.step),
        };
        state.history.train.push({ step: event.step, epoch, loss: event.loss, lr, gradNorm });
        this.emit('step', event);
        await this.log({ type: 'step', ...event });
        const evalNow = o.evalEvery ? state.step % o.evalEvery === 0 : lastOfEpoch;
        const stop = evalNow && (validation || call.evalSets) ? await validate() : false;
        const done = o.maxSteps !== undefined && state.step >= o.maxSteps;
        if (o.outputDir && (stop || done || (o.checkpointEvery && state.step % o.checkpointEvery === 0))) {
          await saveTo(checkpointDir(o.outputDir, state.step));
          await pruneCheckpoints(o.outputDir, o.keepCheckpoints);
        }
        if (stop) {
          stopReason = 'early-stopping';
          break outer;
        }
        if (done) {
          stopReason = 'max-steps';
          break outer;
        }
        if (call.signal?.aborted) {
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
    await this.log({ type: 'stop', step: state.step, reason: stopReason });
    if (o.restoreBest && bestParams && state.best && state.best.step !== state.step) {
      const now = model.optimizerState();
      model.setOptimizerState({ params: bestParams, m: now.m, v: now.v, step: now.step });
    }
    const final: Record<string, EvalResult> = {};
    for (const [name, split] of Object.entries(call.evalSets ?? {})) final[name] = await this.evaluate(split);
    const testResult = test && stopReason !== 'aborted' ? await this.evaluate(test) : null;
    if (testResult) await this.log({ type: 'test', step: state.step, ...testResult, report: undefined });
    return { steps: state.step, stopReason, best: state.best, history: state.history, test: testResult, evalSets: final, seconds: (performance.now() - started) / 1000 };
  }
}
