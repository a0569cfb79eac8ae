// The Model object over the addon's one model class, the same for every family: options are
// validated here (zod), defaults filled in from model/defaults.ts, tensors wrapped.
import { z } from 'zod';
import { awaitNative, callNative, TunekitError } from '../errors.js';
import type { NativeModel, NativeTensor, NativeTensorKind } from '../native.js';
import { Tensor } from '../tensor.js';
import type { TextTokenizer } from '../tokenizer/gguf.js';
import { parseOptions, type Same } from '../validate.js';
import type { Weights } from '../weights.js';
import {
  DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_EPS, DEFAULT_LORA_ALPHA, DEFAULT_LORA_DROPOUT, DEFAULT_LORA_RANK, DEFAULT_LR,
  DEFAULT_MAX_GRAD_NORM, DEFAULT_WEIGHT_DECAY,
} from './defaults.js';
import { generate } from './generate.js';
import { i32Tensor } from './ids.js';
import type { Batch, ClassifierOptions, LoraOptions, Model, ModelConfig, OptimizerOptions, TrainStepOptions } from './types.js';

/** What differs between families: their LoRA module names. */
export interface Family {
  name: 'llama' | 'gpt2';
  loraTargets: readonly [string, ...string[]];
}
export const LLAMA: Family = { name: 'llama', loraTargets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] };
export const GPT2: Family = { name: 'gpt2', loraTargets: ['c_attn', 'c_proj', 'c_fc'] };
/** Phi-3 on the Llama engine: PEFT's module names, the fused ones adapted whole. */
export const PHI3: Family = { name: 'llama', loraTargets: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'] };

const loraSchema = (f: Family) =>
  z
    .object({
      r: z.number().int().min(1).max(4096).optional().describe('LoRA rank'),
      alpha: z.number().finite().optional().describe('LoRA alpha; the update is scaled by alpha / r'),
      rslora: z.boolean().optional().describe('Scale by alpha / sqrt(r) instead (rsLoRA)'),
      dropout: z.number().min(0).lt(1).optional().describe("Dropout on each adapter's input during training steps (PEFT's lora_dropout)"),
      targets: z.array(z.enum(f.loraTargets)).min(1).optional().describe('Modules to adapt'),
      layers: z.array(z.number().int().min(0)).optional().describe('Layers to adapt'),
      seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('Seed of the A initialization'),
    })
    .strict();

const ClassifierSchema = z
  .object({
    classes: z.number().int().min(2).describe('Number of classes'),
    hidden: z.number().int().min(0).optional().describe('Hidden units of a two-layer (tanh) head; 0: linear'),
    pooling: z.enum(['last', 'mean']).optional().describe('Sequence heads: last real token or mean of the tokens'),
    token: z.boolean().optional().describe('Token classification'),
    seed: z.number().int().min(0).optional(),
  })
  .strict();

const TrainStepSchema = z
  .object({
    bf16: z.boolean().optional().describe('bf16 GEMMs with fp32 accumulation'),
    checkpoint: z.boolean().optional().describe('Activation checkpointing: recompute each layer in the backward to save memory'),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('Seed of the LoRA dropout masks'),
    logitRows: z.number().int().min(1).optional().describe('Rows of LM-head logits materialized at once (the loss and its gradient run a chunk of rows at a time)'),
  })
  .strict();

const OptimizerSchema = z
  .object({
    lr: z.number().min(0).optional().describe('Learning rate (0 is allowed, as the first warmup step takes)'),
    beta1: z.number().min(0).lt(1).optional(),
    beta2: z.number().min(0).lt(1).optional(),
    eps: z.number().positive().optional(),
    weightDecay: z.number().min(0).optional().describe('Decoupled weight decay'),
    maxGradNorm: z.number().min(0).optional().describe('Clip the global gradient norm to this (0: no clipping)'),
    lrScales: z.array(z.object({ offset: z.number().int().min(0), length: z.number().int().min(0), scale: z.number().min(0) }).strict()).optional()
      .describe('Learning-rate multipliers of parameter ranges (see paramGroups): discriminative rates, 0 to freeze'),
  })
  .strict();

// The schemas accept exactly the documented option types (a compile-time check).
const schemasMatchTypes: [
  Same<z.input<typeof ClassifierSchema>, ClassifierOptions>, Same<z.input<typeof TrainStepSchema>, TrainStepOptions>,
  Same<z.input<typeof OptimizerSchema>, OptimizerOptions>,
] = [true, true, true];
void schemasMatchTypes;

function batchTensor(rows: number[][], what: string): Tensor<'i32'> {
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every((r) => Array.isArray(r) && r.length === rows[0]!.length && r.length > 0)) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected ${what} to be a non-empty array of equal-length, non-empty sequences`);
  }
  const width = rows[0]!.length;
  return i32Tensor([rows.length, width], rows.flat(), (i) => `${what}[${Math.floor(i / width)}][${i % width}]`);
}

const vector = (values: ArrayLike<unknown>, what: string) => i32Tensor([values.length], values, (i) => `${what}[${i}]`);

function batchTensors(batch: Batch): { ids: Tensor<'i32'>; labels: Tensor<'i32'>; positions?: Tensor<'i32'>; lengths?: Tensor<'i32'> } {
  const ids = batchTensor(batch.inputIds, 'inputIds');
  const lengths = batch.lengths ? vector(batch.lengths, 'lengths') : undefined;
  if (batch.labels.length > 0 && !Array.isArray(batch.labels[0])) {
    // One class id per sequence (a classifier head checks the count).
    return { ids, labels: vector(batch.labels, 'labels'), lengths };
  }
  const labels = batchTensor(batch.labels as number[][], 'labels');
  const same = (t: Tensor<'i32'>, what: string) => {
    if (t.shape[0] !== ids.shape[0] || t.shape[1] !== ids.shape[1]) {
      throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected ${what} shaped like inputIds [${ids.shape.join(', ')}] but received [${t.shape.join(', ')}]`);
    }
    return t;
  };
  return { ids, labels: same(labels, 'labels'), positions: batch.positionIds ? same(batchTensor(batch.positionIds, 'positionIds'), 'positionIds') : undefined, lengths };
}

const wrapAll = (h: Record<string, NativeTensor>) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k, new Tensor(v) as Tensor<'f32'>]));
const handles = (t: Record<string, Tensor<'f32'>>) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.handle]));

/**
 * A Model over a native model of `family`. weightCache: bf16 steps keep the frozen weights
 * packed (see LoadOptions.bf16WeightCache).
 */
export function wrapModel(family: Family, config: ModelConfig, tokenizer: TextTokenizer | null, model: NativeModel,
  weights: Record<string, Tensor | Weights>, weightCache: boolean): Model {
  const LoraSchema = loraSchema(family);
  let trainable: Model['trainable'] = 'none';
  let lora: Model['lora'] = null;
  let classifier: Model['classifier'] = null;
  const tensors = (kind: NativeTensorKind, which: 'params' | 'grads' = 'params') => wrapAll(callNative(() => model.tensors(kind, which)));
  const setTensors = (kind: NativeTensorKind, t: Record<string, Tensor<'f32'>>) => callNative(() => model.setTensors(kind, handles(t)));
  return {
    config,
    tokenizer,
    native: model,
    weights,
    get trainable() {
      return trainable;
    },
    get lora() {
      return lora;
    },
    get classifier() {
      return classifier;
    },
    async logits(tokenIds) {
      const ids = vector(tokenIds, 'tokenIds');
      return new Tensor(await awaitNative(() => model.logits(ids.handle))) as Tensor<'f32'>;
    },
    generate(prompt, options) {
      return generate(model, tokenizer, prompt, options);
    },
    async generateText(prompt, options) {
      let text = '';
      for await (const step of generate(model, tokenizer, prompt, options)) text += step.text;
      return text;
    },
    addLora(options: LoraOptions = {}) {
      const o = parseOptions(LoraSchema, options, 'addLora');
      const filled = {
        r: o.r ?? DEFAULT_LORA_RANK, alpha: o.alpha ?? DEFAULT_LORA_ALPHA, rslora: o.rslora ?? false, dropout: o.dropout ?? DEFAULT_LORA_DROPOUT,
        seed: o.seed ?? 0, targets: (o.targets ?? [...family.loraTargets]) as LoraOptions['targets'] & {},
        layers: o.layers ?? Array.from({ length: config.layers }, (_, i) => i),
      };
      const count = callNative(() => model.addLora(filled));
      trainable = 'lora';
      lora = filled;
      return count;
    },
    enableFullTraining() {
      const count = callNative(() => model.enableFullTraining());
      trainable = 'full';
      lora = null;
      return count;
    },
    addClassifier(options) {
      const o = parseOptions(ClassifierSchema, options, 'addClassifier');
      const count = callNative(() => model.addClassifier(o));
      classifier = { classes: o.classes, hidden: o.hidden ?? 0, pooling: o.pooling ?? 'last', token: o.token ?? false, seed: o.seed ?? 0 };
      if (trainable === 'none') trainable = 'head';
      return count;
    },
    fullTensors: (which) => tensors('full', which),
    loraTensors: (which) => tensors('lora', which),
    headTensors: (which) => tensors('head', which),
    setLoraTensors: (t) => setTensors('lora', t),
    setHeadTensors: (t) => setTensors('head', t),
    async features(inputIds, options = {}) {
      const ids = batchTensor(inputIds, 'inputIds');
      const lengths = options.lengths ? vector(options.lengths, 'lengths') : undefined;
      return new Tensor(await awaitNative(() => model.features(ids.handle, { pooling: options.pooling, bf16: options.bf16, lengths: lengths?.handle }))) as Tensor<'f32'>;
    },
    headStep(features, labels, options = {}) {
      const r = callNative(() => model.headStep(features.handle, vector(labels, 'labels').handle, options));
      return { ...r, logits: new Tensor(r.logits) as Tensor<'f32'> };
    },
    async trainStep(batch, options = {}) {
      const o = parseOptions(TrainStepSchema, options, 'trainStep');
      const { ids, labels, positions, lengths } = batchTensors(batch);
      const r = await awaitNative(() => model.trainStep(ids.handle, labels.handle, { ...o, weightCache, positions: positions?.handle, lengths: lengths?.handle }));
      return { loss: r.loss, tokens: r.tokens, gradNorm: r.gradNorm };
    },
    async evaluate(batch, options = {}) {
      const o = parseOptions(z.object({ bf16: z.boolean().optional() }).strict(), options, 'evaluate');
      const { ids, labels, positions, lengths } = batchTensors(batch);
      const r = await awaitNative(() => model.trainStep(ids.handle, labels.handle, { ...o, weightCache, backward: false, positions: positions?.handle, lengths: lengths?.handle }));
      return { loss: r.loss, tokens: r.tokens, ...(r.logits ? { logits: new Tensor(r.logits) as Tensor<'f32'> } : {}) };
    },
    async optimizerStep(options = {}) {
      const o = parseOptions(OptimizerSchema, options, 'optimizerStep');
      const r = await awaitNative(() => model.optimizerStep({
        lr: o.lr ?? DEFAULT_LR, beta1: o.beta1 ?? DEFAULT_BETA1, beta2: o.beta2 ?? DEFAULT_BETA2, eps: o.eps ?? DEFAULT_EPS,
        weightDecay: o.weightDecay ?? DEFAULT_WEIGHT_DECAY, maxGradNorm: o.maxGradNorm ?? DEFAULT_MAX_GRAD_NORM, lrScales: o.lrScales,
      }));
      return { gradNorm: r.gradNorm, step: r.step };
    },
    optimizerState() {
      const s = callNative(() => model.optimizerState());
      const t = (h: NativeTensor) => new Tensor(h) as Tensor<'f32'>;
      return { params: t(s.params), grads: t(s.grads), m: t(s.m), v: t(s.v), step: s.step, tokens: s.tokens };
    },
    setOptimizerState(state) {
      callNative(() => model.setOptimizerState({
        params: state.params.handle, grads: state.grads?.handle, m: state.m.handle, v: state.v.handle, step: state.step, tokens: state.tokens,
      }));
    },
    paramGroups() {
      return callNative(() => model.paramGroups());
    },
    trainableLayout() {
      return callNative(() => model.layout());
    },
    trainableParams() {
      return new Tensor(callNative(() => model.optimizerState(['params'])).params) as Tensor<'f32'>;
    },
  };
}
