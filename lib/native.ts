// The one typed description of the native addon's surface. Everything else in lib/ goes through
// this module; nothing outside it touches the addon directly.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type NativeDtype = 'f32' | 'bf16' | 'f16' | 'i32' | 'u8';
export type Isa = 'scalar' | 'avx2' | 'avx512' | 'avx512bf16' | 'amx';

export interface NativeTensor {
  readonly dtype: NativeDtype;
  readonly shape: number[];
  readonly byteLength: number;
  readonly buffer: ArrayBuffer;
  dispose(): void;
}

export interface NativeRuntimeInfo {
  isa: Isa;
  detectedIsa: Isa;
  isaForced: boolean;
  threads: number;
  logicalCores: number;
  buildFlavour: string;
  cpuVendor: string;
  cpuFeatures: { avx2: boolean; avx512f: boolean; avx512bf16: boolean; amxBf16: boolean; amxPermissionDenied: boolean; amxEmulated: boolean };
  /** The backends this build can run a model on ('cpu'; 'cuda' in a CUDA build). */
  backends: string[];
  /** A CUDA build's GPUs (absent in a CPU build). */
  cuda?: NativeCudaInfo;
}

export interface NativeCudaInfo {
  /** The CUDA runtime compiled into the addon, e.g. '13.0'. */
  runtimeVersion: string;
  /** The CUDA version the NVIDIA driver supports, or null without a driver. */
  driverVersion: string | null;
  /** Why no GPU can be used, when none can. */
  error?: string;
  /** usedBytes and peakBytes: tunekit's own allocations on the GPU (buffers and weights), now and at most so far. */
  devices: { device: string; name: string; memoryBytes: number; freeBytes: number; usedBytes: number; peakBytes: number; computeCapability: string }[];
}

export type WeightFormat = 'f32' | 'bf16' | 'f16' | 'nf4' | 'q4_0' | 'q4_1' | 'q8_0' | 'q2_k' | 'q3_k' | 'q4_k' | 'q5_k' | 'q6_k' | 'q8_k' | 'q5_0' | 'q5_1' | 'iq4_nl' | 'iq4_xs';

export interface NativeWeightsSpec {
  format: WeightFormat;
  shape: [number, number];
  blocksize?: number;
  doubleQuant?: boolean;
  data: NativeTensor;
  absmax?: NativeTensor;
  qabsmax?: NativeTensor;
  absmax2?: NativeTensor;
  offset?: number;
}

export interface NativeWeights {
  info(): { format: WeightFormat; shape: [number, number]; blocksize: number; doubleQuant: boolean; storedBytes: number };
  parts(): { data: NativeTensor; absmax?: NativeTensor; qabsmax?: NativeTensor; absmax2?: NativeTensor; offset?: number };
  dequantize(out?: NativeTensor): Promise<NativeTensor>;
}

export interface NativeGemmOptions {
  transposeA?: boolean;
  transposeB?: boolean;
  bf16?: boolean;
  alpha?: number;
  beta?: number;
  reference?: boolean;
  repeat?: number;
  prepacked?: boolean;
  prepackedA?: boolean;
}

export interface NativeLoraOptions {
  scale: number;
  dropout?: number;
  seed?: number;
  bf16?: boolean;
}

export interface NativeLlamaConfig {
  /** The backend the model runs on: 'cpu' (default), 'cuda', 'cuda:N'. */
  backend?: string;
  dim: number;
  layers: number;
  ffn: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  eps: number;
  ropeTheta: number;
  tiedEmbeddings: boolean;
  /** GGUF checkpoints pair (2i, 2i+1); Hugging Face ones rotate halves (default true). */
  interleavedRope?: boolean;
  /** Mistral's sliding-window attention span (0 or absent: full causal attention). */
  slidingWindow?: number;
  /** Qwen2: q, k and v projections carry biases (blk.N.attn_q.bias, ...). */
  qkvBias?: boolean;
  /** Qwen3: an RMSNorm over each head of q and k before RoPE (blk.N.attn_q_norm.weight, attn_k_norm, [headDim]). */
  qkNorm?: boolean;
  /** RoPE scaling (Llama 3.x's "llama3", "linear"): pair i's frequency is divided by ropeFreqFactors[i] (llama.cpp's rope_freqs.weight); rotaryDim / 2 numbers (longrope: the short factors). */
  ropeFreqFactors?: number[];
  /** Gemma: the embedding's rows are multiplied by this (√dim); 0 or absent: not scaled. */
  embedScale?: number;
  /** The MLP's gate: 'silu' (SwiGLU, default) or 'gelu_tanh' (Gemma's GeGLU). */
  activation?: 'silu' | 'gelu_tanh';
  /** Gemma: RMSNorms on the attention's and the MLP's outputs (blk.N.post_attention_norm.weight, blk.N.post_ffw_norm.weight). */
  postNorms?: boolean;
  /** Gemma: attention scores are scaled by queryPreAttnScalar^-½ instead of headDim^-½. */
  queryPreAttnScalar?: number;
  /** Gemma 3: each layer's sliding window (0: global); overrides slidingWindow. */
  layerWindows?: number[];
  /** Gemma 3: the RoPE base of the layers with a window (no frequency factors); 0 or absent: ropeTheta. */
  ropeThetaLocal?: number;
  /** YaRN: cos and sin are multiplied by this (attention scores by its square); absent: 1. */
  ropeAttentionFactor?: number;
  /** Phi-4-mini: RoPE on the first rotaryDim dimensions of each head (partial_rotary_factor); absent: all. */
  rotaryDim?: number;
  /** longrope: the long factors (ropeFreqFactors holding the short ones), used by a forward whose last position is ropeLongAfter or later. */
  ropeFreqFactorsLong?: number[];
  /** longrope: original_max_position_embeddings. */
  ropeLongAfter?: number;
  /** Dynamic NTK ("dynamic"): a forward whose last position + 1 = L exceeds ropeDynamicAfter rotates with the base ropeTheta · (f·L / after − (f − 1))^(d / (d − 2)); 0 or absent: off. */
  ropeDynamicFactor?: number;
  /** Dynamic NTK: max_position_embeddings, the length up to which RoPE is plain. */
  ropeDynamicAfter?: number;
  /** Phi-3: q/k/v and gate/up came fused (qkv_proj, gate_up_proj); LoRA targets are qkv_proj, o_proj, gate_up_proj, down_proj, each fused matrix adapted whole. */
  fusedProjections?: boolean;
  /** Gemma 2: attention scores become c·tanh(s / c) before the softmax (attn_logit_softcapping); 0 or absent: none. */
  attnSoftcap?: number;
  /** Gemma 2: the LM head's logits become c·tanh(x / c) (final_logit_softcapping); 0 or absent: none. */
  logitSoftcap?: number;
}

export interface NativeSession {
  readonly length: number;
  readonly capacity: number;
  decode(tokens: NativeTensor): Promise<NativeTensor>;
  reset(): void;
}

/** Which trainable tensors: LoRA adapters, fully trained weights, or a classifier head. */
export type NativeTensorKind = 'lora' | 'full' | 'head';

export interface NativeOptimizerState {
  params: NativeTensor;
  grads: NativeTensor;
  m: NativeTensor;
  v: NativeTensor;
  step: number;
  tokens: number;
  /** Where m and v sit in the flat layout: this rank's shard at ZeRO stages 1 and 2 (m and v may be longer: padding). */
  momentsSharded: boolean;
  momentsOffset: number;
  momentsLength: number;
}

/** A rank's place in the flat layout after shardTraining (native/model/trainable.h). */
export interface NativeShard {
  world: number;
  rank: number;
  stage: 0 | 1 | 2;
  size: number;
  padded: number;
  momentsOffset: number;
  momentsLength: number;
}

/** One class for every model family (native/addon/AddonModel.cc). */
export interface NativeModel {
  logits(tokens: NativeTensor): Promise<NativeTensor>;
  createSession(capacity?: number): NativeSession;
  addLora(options: { r?: number; alpha?: number; rslora?: boolean; dropout?: number; targets?: string[]; layers?: number[]; seed?: number }): number;
  enableFullTraining(): number;
  addClassifier(options: { classes: number; hidden?: number; pooling?: 'last' | 'mean'; token?: boolean; seed?: number }): number;
  tensors(kind: NativeTensorKind, which?: 'params' | 'grads'): Record<string, NativeTensor>;
  setTensors(kind: NativeTensorKind, tensors: Record<string, NativeTensor>): void;
  paramGroups(): { name: string; offset: number; length: number }[];
  layout(): { name: string; kind: NativeTensorKind; offset: number; shape: number[] }[];
  trainStep(
    tokens: NativeTensor,
    labels: NativeTensor,
    options?: { bf16?: boolean; checkpoint?: boolean; backward?: boolean; positions?: NativeTensor; seed?: number; lengths?: NativeTensor; weightCache?: boolean },
  ): Promise<{ loss: number; tokens: number; gradNorm: number; logits?: NativeTensor; commSeconds?: number; commBytes?: number }>;
  features(tokens: NativeTensor, options?: { lengths?: NativeTensor; pooling?: 'last' | 'mean'; bf16?: boolean }): Promise<NativeTensor>;
  headStep(features: NativeTensor, labels: NativeTensor, options?: { backward?: boolean }): { loss: number; tokens: number; gradNorm: number; logits: NativeTensor };
  optimizerState(names?: string[]): NativeOptimizerState;
  setOptimizerState(state: { params: NativeTensor; grads?: NativeTensor; m: NativeTensor; v: NativeTensor; step: number; tokens?: number }): void;
  optimizerStep(options: {
    lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number; maxGradNorm?: number;
    lrScales?: { offset: number; length: number; scale: number }[];
  }): Promise<{ gradNorm: number; step: number; tokens: number; commSeconds: number; commBytes: number }>;
  shardTraining(options: { stage: 0 | 1 | 2 }): NativeShard;
  /** ZeRO-2: takes part in a micro-batch's gradient reductions with nothing to add (a rank whose share has no labelled token). */
  passGradients(): Promise<void>;
}

export interface NativeGpt2Config {
  backend?: string;
  dim: number;
  layers: number;
  heads: number;
  vocab: number;
  positions: number;
  ffn: number;
  eps: number;
}

export interface NativeAddon {
  Tensor: new (dtype: NativeDtype, shape: number[]) => NativeTensor;
  Weights: new (spec: NativeWeightsSpec) => NativeWeights;
  Model: {
    new (family: 'llama', config: NativeLlamaConfig, tensors: Record<string, NativeTensor | NativeWeights>): NativeModel;
    new (family: 'gpt2', config: NativeGpt2Config, tensors: Record<string, NativeTensor | NativeWeights>): NativeModel;
  };
  quantizeWeights(w: NativeTensor, options: { format: WeightFormat; blocksize?: number; doubleQuant?: boolean }): Promise<NativeWeights>;
  runtimeInfo(): NativeRuntimeInfo;
  setRuntimeOptions(options: { threads?: number; isa?: Isa }): void;
  measureLimit(kind: 'fp32' | 'bf16' | 'amx' | 'memory', seconds: number): Promise<number>;
  gemm(a: NativeTensor, b: NativeTensor | NativeWeights, c: NativeTensor, options: NativeGemmOptions): Promise<void>;
  runOp(name: string, tensors: NativeTensor[], options?: Record<string, number | boolean | string>): Promise<number[]>;
  /** Initializes MPI through the engine library (native/dist/mpi/) and joins its group. */
  openDistributed(engineLibrary: string): { rank: number; world: number; engine: 'mpi'; version: string };
  distAllReduce(values: Float64Array): Promise<void>;
  distBroadcast(values: Float64Array, root: number): Promise<void>;
  distBarrier(): Promise<void>;
  loraLinearForward(
    x: NativeTensor, w: NativeTensor | NativeWeights, a: NativeTensor, b: NativeTensor, y: NativeTensor, t: NativeTensor,
    options: NativeLoraOptions,
  ): Promise<void>;
  loraLinearBackward(
    dy: NativeTensor, x: NativeTensor, w: NativeTensor | NativeWeights, a: NativeTensor, b: NativeTensor, t: NativeTensor,
    dx: NativeTensor | null, da: NativeTensor, db: NativeTensor, options: NativeLoraOptions,
  ): Promise<void>;
}

/** The package root: the nearest folder above this file whose package.json names tunekit. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'tunekit') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('tunekit: could not find the package root above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

const require = createRequire(import.meta.url);
// node-gyp-build loads build/Release first, then prebuilds/<platform>-<arch>/.
const loadBinding = require('node-gyp-build') as ((root: string) => NativeAddon) & { path(root: string): string };

// TUNEKIT_ADDON: an addon file to load instead (another build of this version: a CUDA build beside
// the CPU one, as the CUDA build test loads it).
const addonOverride = process.env.TUNEKIT_ADDON ? resolve(process.env.TUNEKIT_ADDON) : undefined;

export const native: NativeAddon = addonOverride ? (require(addonOverride) as NativeAddon) : loadBinding(packageRoot());

/** The file the addon was loaded from (the MPI engine library lies beside it). */
export const nativePath = (): string => addonOverride ?? loadBinding.path(packageRoot());
