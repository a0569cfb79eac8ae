// The model's public types: what loadModel returns, a batch, and the options of its training
// calls. Every option says its default (defined once, in model/defaults.ts).
import type { NativeLlamaConfig, NativeModel } from '../native.js';
import type { Tensor } from '../tensor.js';
import type { TextTokenizer } from '../tokenizer/gguf.js';
import type { Weights } from '../weights.js';
import type { GenerateOptions, GenerateStep } from './generate.js';

/** The Llama family's LoRA targets (PEFT's module names). */
export type LlamaLoraTarget = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj';
/** Phi-3's LoRA targets (PEFT's module names; qkv_proj and gate_up_proj are each one fused matrix). */
export type Phi3LoraTarget = 'qkv_proj' | 'o_proj' | 'gate_up_proj' | 'down_proj';
/** GPT-2's LoRA targets: its Conv1D modules (c_proj is attention's and the MLP's, as in PEFT). */
export type Gpt2LoraTarget = 'c_attn' | 'c_proj' | 'c_fc';

export interface LoraOptions {
  /** LoRA rank. Default 8. */
  r?: number;
  /** The update is scaled by alpha / r (alpha / sqrt(r) with rslora). Default 16. */
  alpha?: number;
  /** rsLoRA: scale by alpha / sqrt(r). Default false. */
  rslora?: boolean;
  /** Dropout on each adapter's input during training steps (PEFT's lora_dropout). Default 0. */
  dropout?: number;
  /** Modules to adapt. Default: all of the family's (the seven projections; Phi-3's four modules; GPT-2's three Conv1D names). */
  targets?: (LlamaLoraTarget | Phi3LoraTarget | Gpt2LoraTarget)[];
  /** Layers to adapt. Default: all. */
  layers?: number[];
  /** Seed of the A initialization. Default 0. */
  seed?: number;
}

export interface ClassifierOptions {
  /** Number of classes (>= 2). */
  classes: number;
  /** 0: one linear layer; > 0: Linear(dim, hidden) -> tanh -> Linear(hidden, classes). Default 0. */
  hidden?: number;
  /** Sequence heads: pool the last real token (as LlamaForSequenceClassification) or the mean. Default 'last'. */
  pooling?: 'last' | 'mean';
  /** Token classification: a label per token. Default false. */
  token?: boolean;
  /** Seed of the head's initialization. Default 0. */
  seed?: number;
}

export interface TrainStepOptions {
  /** bf16 GEMMs with fp32 accumulation. Default false. */
  bf16?: boolean;
  /** Activation checkpointing: recompute each layer in the backward to save memory. Default false. */
  checkpoint?: boolean;
  /** Seed of this step's LoRA dropout masks (the same seed, the same masks). Default 0. */
  seed?: number;
  /**
   * Rows of LM-head logits materialized at once: the loss, its gradient and the backward through
   * the head run a chunk of rows at a time, so the rows x vocabulary logits never exist whole.
   * Default: as many rows as fit in 2^26 values (256 MiB of fp32).
   */
  logitRows?: number;
}

export interface OptimizerOptions {
  /** Learning rate (0 is allowed, as the first warmup step takes). Default 2e-4. */
  lr?: number;
  /** AdamW beta1. Default 0.9. */
  beta1?: number;
  /** AdamW beta2. Default 0.999. */
  beta2?: number;
  /** AdamW epsilon. Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay. Default 0. */
  weightDecay?: number;
  /** Clip the global norm of the mean gradient to this (0: no clipping). Default 0. */
  maxGradNorm?: number;
  /** Learning-rate multipliers of parameter ranges (see paramGroups): discriminative rates, 0 to freeze. Default none. */
  lrScales?: {
    /** First element of the range in the flat trainable vector. */
    offset: number;
    /** Elements in the range. */
    length: number;
    /** Multiplier of the learning rate there (0: frozen). */
    scale: number;
  }[];
}

/**
 * Equal-length rows of token ids and labels (-100: no loss). positionIds, as transformers'
 * position_ids for packed rows: each restart at 0 begins a new example that attends only to itself.
 */
export interface Batch {
  inputIds: number[][];
  /** Next-token targets per position; with a sequence classifier, one class id per row. */
  labels: number[][] | number[];
  positionIds?: number[][];
  /** Real tokens per row (the rest is right padding): where a classifier pools. */
  lengths?: number[];
}

export interface OptimizerState {
  params: Tensor<'f32'>;
  grads?: Tensor<'f32'>;
  m: Tensor<'f32'>;
  v: Tensor<'f32'>;
  step: number;
  /** Labelled tokens whose gradient sums `grads` holds (a checkpoint taken between steps: 0). */
  tokens?: number;
}

export interface ModelConfig extends NativeLlamaConfig {
  architecture: string;
  /** The Hugging Face rope_scaling the RoPE divisors came from (Hugging Face folders; a merged export writes it back). */
  ropeScaling?: Record<string, unknown>;
  /** max_position_embeddings (a GGUF file's context_length): written back by a merged export; dynamic NTK scales past it. */
  maxPositions?: number;
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
   * named modules of the chosen layers; returns the number of trainable parameters.
   */
  addLora(options?: LoraOptions): number;
  /**
   * Full fine-tuning: every weight becomes a trainable fp32 tensor (quantized weights are
   * dequantized; frozen Qwen2 biases stay frozen); trainStep/optimizerStep then update them all.
   * Returns the number of trainable parameters. LoRA adapters are dropped.
   */
  enableFullTraining(): number;
  /** The trainable weights (or their gradients) under the family's names, as copies. */
  fullTensors(which?: 'params' | 'grads'): Record<string, Tensor<'f32'>>;
  /**
   * Forward + backward on equal-length sequences (labels as transformers: -100 is ignored, the
   * shift happens inside). Gradients of the loss *summed* over the labelled tokens accumulate
   * until optimizerStep, which divides them by the window's labelled-token count (so several
   * micro-batches give the gradient of the mean over all their tokens). gradNorm is that of the
   * sums so far.
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
  /** The sequence head alone on precomputed features [rows, dim]: loss, logits, and (unless backward is false) gradient sums. */
  headStep(features: Tensor<'f32'>, labels: number[], options?: { backward?: boolean }): { loss: number; tokens: number; gradNorm: number; logits: Tensor<'f32'> };
  /**
   * The flat trainable state (parameters, gradients, AdamW moments, step count) as copies, and
   * its restore: what a checkpoint needs to resume bit for bit.
   */
  optimizerState(): OptimizerState;
  /** The trainable vector by layer group, bottom to top: embed, layer.N, output, head. */
  paramGroups(): { name: string; offset: number; length: number }[];
  /** Every trainable tensor's place in the flat vector (optimizerState's order): name, kind, offset and shape. */
  trainableLayout(): { name: string; kind: 'lora' | 'full' | 'head'; offset: number; shape: number[] }[];
  /** Only the trainable parameters (a copy): what restoring the best weights needs. */
  trainableParams(): Tensor<'f32'>;
  setOptimizerState(state: OptimizerState): void;
  /**
   * Divides the accumulated gradient sums by their labelled-token count, clips (maxGradNorm),
   * steps AdamW and zeroes them (on a worker thread). A window without labelled tokens changes nothing.
   */
  optimizerStep(options?: OptimizerOptions): Promise<{ gradNorm: number; step: number }>;
  /** The adapters (or their gradients) as tensors named <module>.lora_a [r, in] / .lora_b [out, r]. */
  loraTensors(which?: 'params' | 'grads'): Record<string, Tensor<'f32'>>;
  setLoraTensors(tensors: Record<string, Tensor<'f32'>>): void;
  /** What trainStep updates: nothing yet, LoRA adapters, every weight, or only a classifier head. */
  readonly trainable: 'none' | 'lora' | 'full' | 'head';
  /** The adapters' settings (defaults filled in) once addLora has run. */
  readonly lora: (Required<Omit<LoraOptions, 'layers'>> & { layers: number[] }) | null;
  /** @internal The addon's model object. */
  readonly native: NativeModel;
  /** @internal The frozen weights as loaded (the family's names), for merging and export. */
  readonly weights: Record<string, Tensor | Weights>;
}
