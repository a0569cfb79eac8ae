// loadModel: a model file on disk -> weights in native memory, a tokenizer and a forward pass.
// Now: GGUF files of the `llama` architecture (Llama, Mistral-style and SmolLM checkpoints as
// llama.cpp converts them), quantized matrices kept quantized. Hugging Face folders, GPT-2 and
// training come with the rest of the model engine.
import { stat } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { awaitNative, callNative, TunekitError } from '../errors.js';
import type { GgufValue } from '../gguf/format.js';
import { openGguf } from '../gguf/read.js';
import { native, type NativeGpt2Config, type NativeLlamaConfig, type NativeLlamaModel, type NativeTensor } from '../native.js';
import { Tensor } from '../tensor.js';
import { tokenizerFromGguf, type TextTokenizer } from '../tokenizer/gguf.js';
import { tokenizerFromFolder } from '../tokenizer/hf.js';
import { loadHfFolder } from './hf.js';
import { checkFits } from './memory.js';
import { quantizeWeights, Weights } from '../weights.js';
import { z } from 'zod';
import { parseOptions } from '../validate.js';
import { generate, type Decoder, type GenerateOptions, type GenerateStep } from './generate.js';

const LoraOptions = z
  .object({
    r: z.number().int().min(1).max(4096).optional().describe('LoRA rank (default 8)'),
    alpha: z.number().finite().optional().describe('LoRA alpha; the update is scaled by alpha / r (default 8)'),
    rslora: z.boolean().optional().describe('Scale by alpha / sqrt(r) instead (rsLoRA)'),
    dropout: z.number().min(0).lt(1).optional().describe('Dropout on each adapter\'s input during training steps (PEFT\'s lora_dropout; default 0)'),
    targets: z.array(z.enum(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'])).min(1).optional()
      .describe('Projections to adapt (default: all seven)'),
    layers: z.array(z.number().int().min(0)).optional().describe('Layers to adapt (default: all)'),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('Seed of the A initialization'),
  })
  .strict();
export type LoraOptionsInput = z.input<typeof LoraOptions>;

const ClassifierSchema = z
  .object({
    classes: z.number().int().min(2).describe('Number of classes'),
    hidden: z.number().int().min(0).optional().describe('Hidden units of a two-layer (tanh) head; 0: linear'),
    pooling: z.enum(['last', 'mean']).optional().describe('Sequence heads: last real token or mean of the tokens'),
    token: z.boolean().optional().describe('Token classification'),
    seed: z.number().int().min(0).optional(),
  })
  .strict();

const OptimizerOptions = z
  .object({
    lr: z.number().min(0).optional().describe('Learning rate (default 1e-4; 0 is allowed, as the first warmup step takes)'),
    beta1: z.number().min(0).lt(1).optional(),
    beta2: z.number().min(0).lt(1).optional(),
    eps: z.number().positive().optional(),
    weightDecay: z.number().min(0).optional().describe('Decoupled weight decay (default 0)'),
    maxGradNorm: z.number().min(0).optional().describe('Clip the global gradient norm to this (0: no clipping)'),
    lrScales: z.array(z.object({ offset: z.number().int().min(0), length: z.number().int().min(0), scale: z.number().min(0) }).strict()).optional()
      .describe('Learning-rate multipliers of parameter ranges (see paramGroups): discriminative rates, 0 to freeze'),
  })
  .strict();
export type OptimizerOptions = z.input<typeof OptimizerOptions>;

function batchTensor(rows: number[][], what: string): Tensor<'i32'> {
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every((r) => Array.isArray(r) && r.length === rows[0]!.length && r.length > 0)) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected ${what} to be a non-empty array of equal-length, non-empty sequences`);
  }
  return Tensor.from('i32', [rows.length, rows[0]!.length], rows.flat());
}

/**
 * Equal-length rows of token ids and labels (-100: no loss). positionIds, as transformers'
 * position_ids for packed rows: each restart at 0 begins a new example that attends only to itself.
 */
function batchTensors(batch: Batch): { ids: Tensor<'i32'>; labels: Tensor<'i32'>; positions?: Tensor<'i32'>; lengths?: Tensor<'i32'> } {
  const ids = batchTensor(batch.inputIds, 'inputIds');
  const lengths = batch.lengths ? Tensor.from('i32', [batch.lengths.length], batch.lengths) : undefined;
  if (batch.labels.length > 0 && !Array.isArray(batch.labels[0])) {
    // One class id per sequence (a classifier head checks the count).
    return { ids, labels: Tensor.from('i32', [batch.labels.length], batch.labels as number[]), lengths };
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

export interface Batch {
  inputIds: number[][];
  /** Next-token targets per position; with a sequence classifier, one class id per row. */
  labels: number[][] | number[];
  positionIds?: number[][];
  /** Real tokens per row (the rest is right padding): where a classifier pools. */
  lengths?: number[];
}

export interface ClassifierOptions {
  /** Number of classes (>= 2). */
  classes: number;
  /** 0: one linear layer; > 0: Linear(dim, hidden) -> tanh -> Linear(hidden, classes). */
  hidden?: number;
  /** Sequence heads: pool the last real token (as LlamaForSequenceClassification) or the mean. */
  pooling?: 'last' | 'mean';
  /** Token classification: a label per token. */
  token?: boolean;
  seed?: number;
}

export interface TrainStepOptions {
  /** bf16 GEMMs with fp32 accumulation. */
  bf16?: boolean;
  /** Activation checkpointing: recompute each layer in the backward to save memory. */
  checkpoint?: boolean;
  /** Multiplies the gradients added (gradient accumulation weights micro-batches by their tokens). */
  gradScale?: number;
  /** Seed of this step's LoRA dropout masks (the same seed, the same masks). */
  seed?: number;
}

export interface OptimizerState {
  params: Tensor<'f32'>;
  grads?: Tensor<'f32'>;
  m: Tensor<'f32'>;
  v: Tensor<'f32'>;
  step: number;
}

export interface ModelConfig extends NativeLlamaConfig {
  architecture: string;
}

export interface Model {
  readonly config: ModelConfig;
  /** Null for a folder without tokenizer.json (then prompts must be token ids). */
  readonly tokenizer: TextTokenizer | null;
  /** Logits [tokens, vocab] for one sequence of token ids (positions 0..n-1). */
  logits(tokenIds: ArrayLike<number>): Promise<Tensor<'f32'>>;
  /** Streams a continuation of the prompt (text or token ids), piece by piece, using a KV cache. */
  generate(prompt: string | ArrayLike<number>, options?: GenerateOptions): AsyncGenerator<GenerateStep>;
  /** The whole continuation as one string. */
  generateText(prompt: string | ArrayLike<number>, options?: GenerateOptions): Promise<string>;
  /**
   * Adds trainable LoRA adapters (PEFT's initialization: A uniform in ±1/sqrt(in), B zero) on the
   * named projections of the chosen layers; returns the number of trainable parameters.
   */
  addLora(options?: LoraOptionsInput): number;
  /**
   * Full fine-tuning: every weight becomes a trainable fp32 tensor (quantized weights are
   * dequantized; frozen Qwen2 biases stay frozen); trainStep/optimizerStep then update them all.
   * Returns the number of trainable parameters. LoRA adapters are dropped.
   */
  enableFullTraining(): number;
  /** The trainable weights (or their gradients) under GGUF-style names, as copies. */
  fullTensors(which?: 'params' | 'grads'): Record<string, Tensor<'f32'>>;
  /**
   * Forward + backward on equal-length sequences (labels as transformers: -100 is ignored, the
   * shift happens inside); gradients accumulate until optimizerStep. bf16 runs the projections and
   * LM head as bf16 GEMMs with fp32 accumulation.
   */
  trainStep(batch: Batch, options?: TrainStepOptions): Promise<{ loss: number; tokens: number; gradNorm: number }>;
  /** The mean loss over the labelled tokens of a batch, forward only (gradients untouched); with a classifier, its logits too. */
  evaluate(batch: Batch, options?: { bf16?: boolean }): Promise<{ loss: number; tokens: number; logits?: Tensor<'f32'> }>;
  /**
   * Adds a trainable classification head on the final hidden states (after addLora /
   * enableFullTraining, or on the frozen model); trainStep then takes class ids as labels.
   * Returns the head's parameter count.
   */
  addClassifier(options: ClassifierOptions): number;
  readonly classifier: Required<ClassifierOptions> | null;
  headTensors(which?: 'params' | 'grads'): Record<string, Tensor<'f32'>>;
  setHeadTensors(tensors: Record<string, Tensor<'f32'>>): void;
  /** Pooled final hidden states [rows, dim] of a batch (adapters applied), for feature-based training. */
  features(inputIds: number[][], options?: { lengths?: number[]; pooling?: 'last' | 'mean'; bf16?: boolean }): Promise<Tensor<'f32'>>;
  /** The sequence head alone on precomputed features [rows, dim]: loss, logits, and (unless backward is false) gradients. */
  headStep(features: Tensor<'f32'>, labels: number[], options?: { backward?: boolean; gradScale?: number }): { loss: number; tokens: number; gradNorm: number; logits: Tensor<'f32'> };
  /**
   * The flat trainable state (parameters, gradients, AdamW moments, step count) as copies, and
   * its restore: what a checkpoint needs to resume bit for bit.
   */
  optimizerState(): OptimizerState;
  /** The trainable vector by layer group, bottom to top: embed, layer.N, output, head. */
  paramGroups(): { name: string; offset: number; length: number }[];
  /** Only the trainable parameters (a copy): what restoring the best weights needs. */
  trainableParams(): Tensor<'f32'>;
  setOptimizerState(state: OptimizerState): void;
  /** Clips (maxGradNorm), steps AdamW and zeroes the gradients (on a worker thread). */
  optimizerStep(options?: OptimizerOptions): Promise<{ gradNorm: number; step: number }>;
  /** The adapters (or their gradients) as tensors named blk.N.attn_q.lora_a [r, in] / .lora_b [out, r]. */
  loraTensors(which?: 'params' | 'grads'): Record<string, Tensor<'f32'>>;
  setLoraTensors(tensors: Record<string, Tensor<'f32'>>): void;
  /** What trainStep updates: nothing yet, LoRA adapters, every weight, or only a classifier head. */
  readonly trainable: 'none' | 'lora' | 'full' | 'head';
  /** The adapters' settings (defaults filled in) once addLora has run. */
  readonly lora: Required<Omit<LoraOptionsInput, 'layers'>> & { layers: number[] } | null;
  /** @internal The addon's model object. */
  readonly native: NativeLlamaModel;
  /** @internal The frozen weights as loaded (GGUF names), for merging and export. */
  readonly weights: Record<string, Tensor | Weights>;
}

function num(metadata: Map<string, GgufValue>, key: string, file: string, fallback?: number): number {
  const v = metadata.get(key);
  if (typeof v === 'number') return v;
  if (fallback !== undefined) return fallback;
  throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: metadata ${key} is missing or not a number`);
}

// GGUF architectures the Llama-family engine runs. llama.cpp's converter permutes q/k rows into
// interleaved-RoPE order for "llama" (Llama, Mistral, SmolLM) only; "qwen2" keeps Hugging Face's
// rotate-half order and adds q/k/v biases.
const GGUF_ARCHITECTURES = ['llama', 'qwen2'];

function llamaConfig(metadata: Map<string, GgufValue>, file: string, hasOutput: boolean, a: string): ModelConfig {
  const dim = num(metadata, `${a}.embedding_length`, file);
  const heads = num(metadata, `${a}.attention.head_count`, file);
  const tokens = metadata.get('tokenizer.ggml.tokens');
  return {
    architecture: a,
    dim,
    layers: num(metadata, `${a}.block_count`, file),
    ffn: num(metadata, `${a}.feed_forward_length`, file),
    heads,
    kvHeads: num(metadata, `${a}.attention.head_count_kv`, file, heads),
    headDim: num(metadata, `${a}.rope.dimension_count`, file, dim / heads),
    vocab: num(metadata, `${a}.vocab_size`, file, Array.isArray(tokens) ? tokens.length : undefined),
    eps: num(metadata, `${a}.attention.layer_norm_rms_epsilon`, file, 1e-5),
    ropeTheta: num(metadata, `${a}.rope.freq_base`, file, 10000),
    tiedEmbeddings: !hasOutput,
    interleavedRope: a === 'llama',
    qkvBias: a === 'qwen2',
  };
}

const LoadOptions = z
  .object({
    quantize: z.enum(['nf4', 'bf16', 'q8_0']).optional()
      .describe('Store the projection matrices as NF4 (QLoRA), bf16 or Q8_0 (GGUF files are re-quantized from their own format; without this option they stay as stored)'),
    bf16WeightCache: z.boolean().optional()
      .describe('bf16 steps keep the frozen weights packed for the bf16 GEMM (2 bytes per weight for each direction, packed on the first step) instead of decoding them in every product. Default: on, unless the projections are NF4 (QLoRA: chosen to save memory) or the copy would take over a quarter of this machine\'s memory'),
  })
  .strict();
export type LoadOptions = z.input<typeof LoadOptions>;

/**
 * Loads a model: a GGUF file (architecture `llama`) or a Hugging Face folder (LlamaForCausalLM,
 * MistralForCausalLM, Qwen2ForCausalLM), with its tokenizer when it has one.
 */
/** Whether bf16 steps keep packed weights: the option, else on when not NF4 and under a quarter of memory. */
function keepsWeightPanels(config: NativeLlamaConfig, o: z.output<typeof LoadOptions>): boolean {
  if (o.bf16WeightCache !== undefined) return o.bf16WeightCache;
  if (o.quantize === 'nf4') return false;
  const q = config.heads * config.headDim, kv = config.kvHeads * config.headDim;
  const weights = config.layers * config.dim * (2 * q + 2 * kv + 3 * config.ffn) + config.vocab * config.dim;
  return 4 * weights <= totalmem() / 4;
}

export async function loadModel(path: string, options: LoadOptions = {}): Promise<Model> {
  const o = parseOptions(LoadOptions, options, 'loadModel');
  let isDir = false;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a GGUF model file or a Hugging Face folder at ${path}`);
  }
  if (isDir) {
    const hf = await loadHfFolder(path, o.quantize);
    const tokenizer = await tokenizerFromFolder(path);
    const handles = Object.fromEntries(Object.entries(hf.tensors).map(([k, v]) => [k, v.handle]));
    if (hf.architecture === 'GPT2LMHeadModel') return gpt2Model(hf.config as NativeGpt2Config, tokenizer, handles);
    const model: NativeLlamaModel = callNative(() => new native.LlamaModel(hf.config as NativeLlamaConfig, handles));
    return wrapModel({ ...(hf.config as NativeLlamaConfig), architecture: hf.architecture }, tokenizer, model, hf.tensors, keepsWeightPanels(hf.config as NativeLlamaConfig, o));
  }
  const gguf = await openGguf(path);
  try {
    const arch = gguf.metadata.get('general.architecture');
    if (typeof arch !== 'string' || !GGUF_ARCHITECTURES.includes(arch)) {
      throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${gguf.file}: architecture ${JSON.stringify(arch)} is not supported yet; tunekit loads ${GGUF_ARCHITECTURES.map((x) => `"${x}"`).join(', ')}`);
    }
    const config = llamaConfig(gguf.metadata, gguf.file, gguf.tensors.has('output.weight'), arch);
    // Tensors are read as stored (re-quantizing passes through fp32 one matrix at a time).
    checkFits(gguf.file, [...gguf.tensors.values()].reduce((a, t) => a + t.byteLength, 0));
    const tokenizer = gguf.metadata.has('tokenizer.ggml.model') ? tokenizerFromGguf(gguf.metadata) : null;
    const handles: Record<string, Tensor['handle'] | Weights['handle']> = {};
    const kept: Record<string, Tensor | Weights> = {};
    for (const name of gguf.tensors.keys()) {
      let t = await gguf.read(name);
      // Re-quantize projection matrices on request (the embedding / tied head stays as stored).
      if (o.quantize && /^blk\.\d+\.(attn_(q|k|v|output)|ffn_(gate|up|down))\.weight$/.test(name)) {
        const f32 = t instanceof Weights ? await t.dequantize() : (t as Tensor);
        if (f32.dtype === 'f32') t = await quantizeWeights(f32 as Tensor<'f32'>, { format: o.quantize });
      }
      handles[name] = t.handle;
      kept[name] = t;
    }
    const model: NativeLlamaModel = callNative(() => new native.LlamaModel(config, handles));
    return wrapModel(config, tokenizer, model, kept, keepsWeightPanels(config, o));
  } finally {
    await gguf.close();
  }
}

const Gpt2LoraOptions = z
  .object({
    r: z.number().int().min(1).max(4096).optional().describe('LoRA rank (default 8)'),
    alpha: z.number().finite().optional().describe('LoRA alpha (default 8)'),
    rslora: z.boolean().optional(),
    targets: z.array(z.enum(['c_attn', 'c_proj', 'c_fc'])).min(1).optional().describe('Conv1D modules to adapt (c_proj: attention and MLP, as in PEFT; default all)'),
    layers: z.array(z.number().int().min(0)).optional(),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  })
  .strict();

/** GPT-2: logits, LoRA training (c_attn, c_proj, c_fc) and evaluation; generation comes with its KV cache. */
function gpt2Model(config: NativeGpt2Config, tokenizer: TextTokenizer | null, handles: Record<string, Tensor['handle'] | Weights['handle']>): Model {
  const model = callNative(() => new native.Gpt2Model(config, handles));
  let lora: Model['lora'] = null;
  let full = false;
  const later = (what: string) => () => {
    throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${what} is not supported for GPT-2 models yet`);
  };
  const wrap = (h: Record<string, Tensor['handle']>) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k, new Tensor(v) as Tensor<'f32'>]));
  // Sessions keep their key/value caches as plain tensors [layers, capacity, dim].
  const cached: Decoder = {
    createSession(capacity) {
      if (capacity > config.positions) {
        throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected prompt + maxTokens <= ${config.positions} (the model's positions) but received ${capacity}`);
      }
      const k = Tensor.zeros('f32', [config.layers, capacity, config.dim]), v = Tensor.zeros('f32', [config.layers, capacity, config.dim]);
      let length = 0;
      return {
        async decode(tokens: NativeTensor): Promise<NativeTensor> {
          const n = new Tensor(tokens).shape[0]!;
          const out: NativeTensor = await awaitNative(() => model.decode(tokens, k.handle, v.handle, length));
          length += n;
          return out;
        },
      };
    },
  };
  const step = async (batch: Batch, backward: boolean, gradScale?: number) => {
    const { ids, labels, positions } = batchTensors(batch);
    return awaitNative(() => model.trainStep(ids.handle, labels.handle, { backward, gradScale, positions: positions?.handle }));
  };
  return {
    config: {
      architecture: 'GPT2LMHeadModel', dim: config.dim, layers: config.layers, ffn: config.ffn, heads: config.heads, kvHeads: config.heads,
      headDim: config.dim / config.heads, vocab: config.vocab, eps: config.eps, ropeTheta: 0, tiedEmbeddings: true,
    },
    tokenizer,
    get trainable() {
      return full ? 'full' : lora ? 'lora' : 'none';
    },
    get lora() {
      return lora;
    },
    native: undefined as unknown as NativeLlamaModel,
    weights: {},
    async logits(tokenIds) {
      const ids = Tensor.from('i32', [tokenIds.length], tokenIds);
      return new Tensor(await awaitNative(() => model.logits(ids.handle))) as Tensor<'f32'>;
    },
    addLora(options = {}) {
      const o = parseOptions(Gpt2LoraOptions, options, 'addLora');
      const count = callNative(() => model.addLora(o));
      full = false;
      lora = {
        r: o.r ?? 8, alpha: o.alpha ?? 8, rslora: o.rslora ?? false, dropout: 0, seed: o.seed ?? 0,
        targets: (o.targets ?? ['c_attn', 'c_proj', 'c_fc']) as never, layers: o.layers ?? Array.from({ length: config.layers }, (_, i) => i),
      };
      return count;
    },
    loraTensors: (which = 'params') => wrap(callNative(() => model.loraTensors(which))),
    setLoraTensors(tensors) {
      callNative(() => model.setLoraTensors(Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, v.handle]))));
    },
    async trainStep(batch, options = {}) {
      if (options.bf16 || options.checkpoint) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', 'bf16 and activation checkpointing are not supported for GPT-2 training yet');
      return step(batch, true, options.gradScale);
    },
    async evaluate(batch) {
      const r = await step(batch, false);
      return { loss: r.loss, tokens: r.tokens };
    },
    async optimizerStep(options = {}) {
      const o = parseOptions(OptimizerOptions, options, 'optimizerStep');
      if (o.lrScales) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', 'lrScales are not supported for GPT-2 yet');
      return callNative(() => model.optimizerStep(o));
    },
    optimizerState() {
      const s = callNative(() => model.optimizerState());
      const t = (h: typeof s.params) => new Tensor(h) as Tensor<'f32'>;
      return { params: t(s.params), grads: t(s.grads), m: t(s.m), v: t(s.v), step: s.step };
    },
    trainableParams() {
      return new Tensor(callNative(() => model.optimizerState()).params) as Tensor<'f32'>;
    },
    setOptimizerState(state) {
      callNative(() => model.setOptimizerState({ params: state.params.handle, grads: state.grads?.handle, m: state.m.handle, v: state.v.handle, step: state.step }));
    },
    generate(prompt, options) {
      return generate(cached, tokenizer, prompt, options);
    },
    async generateText(prompt, options) {
      let text = '';
      for await (const s of generate(cached, tokenizer, prompt, options)) text += s.text;
      return text;
    },
    enableFullTraining() {
      const count = callNative(() => model.enableFullTraining());
      full = true;
      lora = null;
      return count;
    },
    fullTensors: (which = 'params') => wrap(callNative(() => model.fullTensors(which))),
    classifier: null,
    addClassifier: later('addClassifier'),
    headTensors: later('headTensors'),
    setHeadTensors: later('setHeadTensors'),
    features: later('features') as never,
    headStep: later('headStep'),
    paramGroups: later('paramGroups'),
  };
}

function wrapModel(config: ModelConfig, tokenizer: TextTokenizer | null, model: NativeLlamaModel, weights: Record<string, Tensor | Weights>, weightCache: boolean): Model {
    let trainable: Model['trainable'] = 'none';
    let lora: Model['lora'] = null;
    let classifier: Model['classifier'] = null;
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
      addClassifier(options) {
        const o = parseOptions(ClassifierSchema, options, 'addClassifier');
        const count = callNative(() => model.addClassifier(o));
        classifier = { classes: o.classes, hidden: o.hidden ?? 0, pooling: o.pooling ?? 'last', token: o.token ?? false, seed: o.seed ?? 0 };
        if (trainable === 'none') trainable = 'head';
        return count;
      },
      headTensors(which = 'params') {
        const raw = callNative(() => model.headTensors(which));
        return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, new Tensor(v) as Tensor<'f32'>]));
      },
      setHeadTensors(tensors) {
        callNative(() => model.setHeadTensors(Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, v.handle]))));
      },
      async features(inputIds, options = {}) {
        const ids = batchTensor(inputIds, 'inputIds');
        const lengths = options.lengths ? Tensor.from('i32', [options.lengths.length], options.lengths) : undefined;
        return new Tensor(await awaitNative(() => model.features(ids.handle, { pooling: options.pooling, bf16: options.bf16, lengths: lengths?.handle }))) as Tensor<'f32'>;
      },
      headStep(features, labels, options = {}) {
        const r = callNative(() => model.headStep(features.handle, Tensor.from('i32', [labels.length], labels).handle, options));
        return { ...r, logits: new Tensor(r.logits) as Tensor<'f32'> };
      },
      async logits(tokenIds) {
        const ids = Tensor.from('i32', [tokenIds.length], tokenIds);
        return new Tensor(await awaitNative(() => model.logits(ids.handle))) as Tensor<'f32'>;
      },
      generate(prompt, options) {
        return generate(model, tokenizer, prompt, options);
      },
      addLora(options = {}) {
        const o = parseOptions(LoraOptions, options, 'addLora');
        const count = callNative(() => model.addLora(o));
        trainable = 'lora';
        lora = {
          r: o.r ?? 8, alpha: o.alpha ?? 8, rslora: o.rslora ?? false, dropout: o.dropout ?? 0, seed: o.seed ?? 0,
          targets: o.targets ?? ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
          layers: o.layers ?? Array.from({ length: config.layers }, (_, i) => i),
        };
        return count;
      },
      async trainStep(batch, options = {}) {
        const o = parseOptions(
          z.object({
            bf16: z.boolean().optional().describe('bf16 GEMMs with fp32 accumulation'),
            checkpoint: z.boolean().optional().describe('Activation checkpointing: recompute each layer in the backward to save memory'),
            gradScale: z.number().finite().min(0).optional().describe('Multiplies the gradients added by this step'),
            seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('Seed of the LoRA dropout masks'),
          }).strict(),
          options,
          'trainStep',
        );
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
      optimizerState() {
        const s = callNative(() => model.optimizerState());
        const t = (h: typeof s.params) => new Tensor(h) as Tensor<'f32'>;
        return { params: t(s.params), grads: t(s.grads), m: t(s.m), v: t(s.v), step: s.step };
      },
      paramGroups() {
        return callNative(() => model.paramGroups());
      },
      trainableParams() {
        return new Tensor(callNative(() => model.optimizerState(['params'])).params) as Tensor<'f32'>;
      },
      setOptimizerState(state) {
        callNative(() =>
          model.setOptimizerState({ params: state.params.handle, grads: state.grads?.handle, m: state.m.handle, v: state.v.handle, step: state.step }),
        );
      },
      async optimizerStep(options = {}) {
        const o = parseOptions(OptimizerOptions, options, 'optimizerStep');
        return awaitNative(() => model.optimizerStep(o));
      },
      enableFullTraining() {
        const count = callNative(() => model.enableFullTraining());
        trainable = 'full';
        lora = null;
        return count;
      },
      fullTensors(which = 'params') {
        const raw = callNative(() => model.fullTensors(which));
        return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, new Tensor(v) as Tensor<'f32'>]));
      },
      loraTensors(which = 'params') {
        const raw = callNative(() => model.loraTensors(which));
        return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, new Tensor(v) as Tensor<'f32'>]));
      },
      setLoraTensors(tensors) {
        callNative(() => model.setLoraTensors(Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, v.handle]))));
      },
      async generateText(prompt, options) {
        let text = '';
        for await (const step of generate(model, tokenizer, prompt, options)) text += step.text;
        return text;
      },
    };
}
