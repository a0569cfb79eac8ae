// Fine-tuning a language model into a text classifier by each method the field uses, on the same
// data and with the same evaluation, so users can see which one wins:
//   feature-based  frozen model as a feature extractor: pooled features computed once (cached on
//                  disk), only a linear classifier trains
//   frozen-dense   frozen model + new dense layers (Linear -> tanh -> Linear), trained through the
//                  model's forward pass every step ("Finetuning I")
//   lora / qlora   LoRA adapters (on an NF4 base for QLoRA) + a linear head
//   full           every weight + a linear head ("Finetuning II")
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { batches } from '../data/batches.js';
import type { Dataset, DataSplit } from '../data/dataset.js';
import { Random } from '../data/random.js';
import { classificationReport } from '../eval/classification.js';
import { TunekitError } from '../errors.js';
import { loadModel } from '../model/load.js';
import type { LoraOptions, Model } from '../model/types.js';
import { openSafetensors } from '../safetensors/read.js';
import { writeSafetensors } from '../safetensors/write.js';
import { Tensor } from '../tensor.js';
import { scheduleFactor } from '../train/schedule.js';
import { classesOf, Trainer, type EvalResult, type StepEvent } from '../train/trainer.js';
import type { TrainerOptions } from '../train/options.js';

export type ClassifierMethod = 'feature-based' | 'frozen-dense' | 'lora' | 'qlora' | 'full';

export interface ClassifierRunOptions {
  /** How the model is adapted: a LoRA or QLoRA backbone, full fine-tuning, a frozen backbone with a dense head, or features computed once (feature-based). */
  method: ClassifierMethod;
  /** Trainer settings (epochs, lr, batchSize, maxLength, early stopping, ...); default: the Trainer's defaults. */
  training?: TrainerOptions;
  /** The adapters of the lora and qlora methods; default: addLora's defaults. */
  lora?: LoraOptions;
  /** Hidden units of the frozen-dense head (default 256). */
  denseHidden?: number;
  /** Sequence heads: pool the last real token or the mean of the tokens. Default 'last'. */
  pooling?: 'last' | 'mean';
  /** Where feature-based caches its features (default: no cache). */
  cacheDir?: string;
  /** Called after each optimizer step (default: none). */
  onStep?: (e: StepEvent) => void;
}

export interface ClassifierRunResult {
  method: ClassifierMethod;
  model: Model;
  trainableParameters: number;
  validation: EvalResult | null;
  test: EvalResult | null;
  seconds: number;
  labels: string[];
}

/** Loads the model, sets up the method's trainable parts and trains it on the dataset's splits. */
export async function trainClassifier(modelPath: string, data: Dataset, o: ClassifierRunOptions): Promise<ClassifierRunResult> {
  const started = performance.now();
  const classes = await classesOf(data.train);
  const model = await loadModel(modelPath, { quantize: o.method === 'qlora' ? 'nf4' : undefined });
  let trainable = 0;
  if (o.method === 'lora' || o.method === 'qlora') trainable += model.addLora(o.lora);
  if (o.method === 'full') trainable += model.enableFullTraining();
  const pooling = o.pooling ?? 'last';
  const token = data.format === 'token-classification';
  if (token && o.method === 'feature-based') throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', 'Feature-based training pools one feature row per text; use frozen-dense for token classification');
  trainable += model.addClassifier({ classes: classes.size, hidden: o.method === 'frozen-dense' ? (o.denseHidden ?? 256) : 0, pooling, token, seed: 1 });
  const labels = [...classes.keys()];
  if (o.method === 'feature-based') {
    const r = await featureBased(model, data, classes, pooling, o);
    return { method: o.method, model, trainableParameters: trainable, ...r, seconds: (performance.now() - started) / 1000, labels };
  }
  const trainer = new Trainer(model, { ...o.training, packing: false });
  trainer.classes = classes;
  if (o.onStep) trainer.on('step', o.onStep);
  const result = await trainer.train(data);
  const validation = data.validation ? await trainer.evaluate(data.validation) : null;
  return { method: o.method, model, trainableParameters: trainable, validation, test: result.test, seconds: (performance.now() - started) / 1000, labels };
}

interface FeatureSet {
  x: Tensor<'f32'>;
  y: number[];
}

/** Pooled features of every example of a split, in order (cached under cacheDir when given). */
async function featuresOf(model: Model, split: DataSplit, classes: Map<string, number>, pooling: 'last' | 'mean', o: ClassifierRunOptions): Promise<FeatureSet> {
  const maxLength = o.training?.maxLength ?? 1024, batchSize = o.training?.evalBatchSize ?? o.training?.batchSize ?? 8;
  const rows: Float32Array[] = [], y: number[] = [];
  const key = createHash('sha256');
  for await (const ex of split.examples(0)) key.update(ex.inputIds.subarray(0, maxLength)).update(String(ex.label));
  key.update(`${model.config.dim}/${model.config.layers}/${pooling}/${maxLength}`);
  const file = o.cacheDir ? join(o.cacheDir, `features-${key.digest('hex').slice(0, 16)}.safetensors`) : null;
  if (file && existsSync(file)) {
    const f = await openSafetensors(file);
    const x = (await f.read('x')) as Tensor<'f32'>, labels = await f.read('y');
    await f.close();
    return { x, y: Array.from(labels.data) };
  }
  for await (const b of batches(split.examples(0), { batchSize, maxLength, padId: model.tokenizer?.eosTokenId ?? 0, classes })) {
    const f = await model.features(b.inputIds, { lengths: b.lengths, pooling, bf16: o.training?.bf16 });
    for (let i = 0; i < b.inputIds.length; i++) rows.push(f.data.slice(i * model.config.dim, (i + 1) * model.config.dim));
    y.push(...(b.labels as number[]));
  }
  const x = Tensor.zeros('f32', [rows.length, model.config.dim]);
  rows.forEach((r, i) => x.data.set(r, i * model.config.dim));
  if (file) {
    await mkdir(o.cacheDir!, { recursive: true });
    await writeSafetensors(file, { x, y: Tensor.from('i32', [y.length], y) });
  }
  return { x, y };
}

function rowsOf(set: FeatureSet, ids: number[], dim: number): Tensor<'f32'> {
  const t = Tensor.zeros('f32', [ids.length, dim]);
  ids.forEach((r, i) => t.data.set(set.x.data.subarray(r * dim, (r + 1) * dim), i * dim));
  return t;
}

function score(model: Model, set: FeatureSet, labels: string[]): EvalResult {
  const r = model.headStep(set.x, set.y, { backward: false });
  const k = labels.length, predicted: string[] = [];
  for (let i = 0; i < set.y.length; i++) {
    const row = r.logits.data.subarray(i * k, (i + 1) * k);
    predicted.push(labels[row.indexOf(Math.max(...row))]!);
  }
  const report = classificationReport(set.y.map((t) => labels[t]!), predicted, labels);
  return { loss: r.loss, perplexity: Math.exp(r.loss), tokens: set.y.length, accuracy: report.accuracy, f1: report.macro.f1, report };
}

/** Features once, then the linear head alone: epochs of shuffled mini-batches, AdamW, early stopping on validation loss. */
async function featureBased(model: Model, data: Dataset, classes: Map<string, number>, pooling: 'last' | 'mean', o: ClassifierRunOptions) {
  const t = o.training ?? {};
  const train = await featuresOf(model, data.train, classes, pooling, o);
  const val = data.validation ? await featuresOf(model, data.validation, classes, pooling, o) : null;
  const test = data.test ? await featuresOf(model, data.test, classes, pooling, o) : null;
  const labels = [...classes.keys()], dim = model.config.dim;
  const epochs = t.epochs ?? 20, batchSize = t.batchSize ?? 32, lr = t.lr ?? 1e-3, patience = t.earlyStopping?.patience ?? 3;
  const perEpoch = Math.ceil(train.y.length / batchSize), total = epochs * perEpoch;
  let best: { loss: number; params: ReturnType<Model['optimizerState']> } | null = null, since = 0, step = 0;
  for (let epoch = 0; epoch < epochs && since < patience; epoch++) {
    const order = new Random(42, epoch).shuffle(train.y.map((_, i) => i));
    for (let i = 0; i < order.length; i += batchSize) {
      const ids = order.slice(i, i + batchSize);
      const r = model.headStep(rowsOf(train, ids, dim), ids.map((j) => train.y[j]!));
      if (!Number.isFinite(r.loss)) throw new TunekitError('ERR_TUNEKIT_NUMERIC', `The head's loss became ${r.loss} at step ${step + 1}`);
      const rate = lr * scheduleFactor({ name: t.schedule ?? 'linear', totalSteps: total, warmupSteps: t.warmupSteps ?? 0 }, step);
      await model.optimizerStep({ lr: rate, weightDecay: t.weightDecay ?? 0, maxGradNorm: t.maxGradNorm ?? 1 });
      o.onStep?.({ step: ++step, totalSteps: total, epoch, loss: r.loss, lr: rate, gradNorm: r.gradNorm, tokens: ids.length, tokensPerSecond: 0, elapsedSeconds: 0, etaSeconds: 0, rssBytes: process.memoryUsage.rss() });
    }
    if (!val) continue;
    const v = score(model, val, labels);
    if (!best || v.loss < best.loss) [best, since] = [{ loss: v.loss, params: model.optimizerState() }, 0];
    else since++;
  }
  if (best) model.setOptimizerState(best.params);
  return { validation: val ? score(model, val, labels) : null, test: test ? score(model, test, labels) : null };
}
