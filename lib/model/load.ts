// loadModel: a model on disk -> weights in native memory, a tokenizer, and the Model object over
// them: GGUF files of the `llama`, `qwen2`, `qwen3`, `phi3`, `gemma2` and `gemma3` architectures (quantized matrices
// kept quantized) and Hugging Face folders (LlamaForCausalLM, MistralForCausalLM, Qwen2/3ForCausalLM, Phi3ForCausalLM,
// Gemma2ForCausalLM, Gemma3ForCausalLM, GPT2LMHeadModel). The Model itself is model/wrap.ts; its types model/types.ts.
import { stat } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { z } from 'zod';
import type { LoadOptions } from '../option-types.js';
import { callNative, TunekitError } from '../errors.js';
import type { GgufValue } from '../gguf/format.js';
import { openGguf } from '../gguf/read.js';
import { isPickle, pickleRefusal } from '../safetensors/pickle.js';
import { native, type NativeGpt2Config, type NativeLlamaConfig, type NativeModel } from '../native.js';
import { Tensor } from '../tensor.js';
import { tokenizerFromGguf } from '../tokenizer/gguf.js';
import { tokenizerFromFolder } from '../tokenizer/hf.js';
import { expected, parseOptions, type Same } from '../validate.js';
import { quantizeWeights, Weights } from '../weights.js';
import { checkLayerCount, loadHfFolder } from './hf.js';
import { fusedBlocks, splitRows } from './fused.js';
import { gemmaGgufConfig } from './gemma.js';
import { ggufRopeScaling } from './rope-scaling.js';
import { checkFits } from './memory.js';
import { prepareDevice } from './device.js';
import type { Model, ModelConfig } from './types.js';
import { GPT2, LLAMA, PHI3, wrapModel } from './wrap.js';

export type { Batch, ClassifierOptions, LoraOptions, Model, ModelConfig, OptimizerOptions, OptimizerState, TrainStepOptions } from './types.js';

function num(metadata: Map<string, GgufValue>, key: string, file: string, fallback?: number): number {
  const v = metadata.get(key);
  if (typeof v === 'number') return v;
  if (fallback !== undefined) return fallback;
  throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: metadata ${key} is missing or not a number`);
}

// A positive finite number (eps <= 0 or a RoPE base <= 0 gives NaN logits).
function positive(metadata: Map<string, GgufValue>, key: string, file: string, fallback: number): number {
  const v = num(metadata, key, file, fallback);
  if (!Number.isFinite(v) || v <= 0) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: metadata ${key} must be a positive number but is ${v}`);
  return v;
}

// GGUF architectures the Llama-family engine runs. llama.cpp's converter permutes q/k rows into
// interleaved-RoPE order for "llama" (Llama, Mistral, SmolLM) only; "qwen2" keeps Hugging Face's
// rotate-half order and adds q/k/v biases; "qwen3" keeps it too, with no biases and per-head q/k
// RMSNorms (attn_q_norm, attn_k_norm); "gemma2" and "gemma3" keep it with Gemma's additions (model/gemma.ts);
// "phi3" keeps it with q/k/v fused in attn_qkv and gate/up in ffn_up (split by model/fused.ts) and a
// sliding window on every layer.
const GGUF_ARCHITECTURES = ['llama', 'qwen2', 'qwen3', 'phi3', 'gemma2', 'gemma3'];

function llamaConfig(metadata: Map<string, GgufValue>, file: string, hasOutput: boolean, a: string): ModelConfig {
  const dim = num(metadata, `${a}.embedding_length`, file);
  const heads = num(metadata, `${a}.attention.head_count`, file);
  const tokens = metadata.get('tokenizer.ggml.tokens');
  const layers = num(metadata, `${a}.block_count`, file);
  // phi3 files write rope.dimension_count as the rotated part of a head (Phi-4-mini: 3/4 of it).
  const headDim = num(metadata, `${a}.attention.key_length`, file, a === 'phi3' ? dim / heads : num(metadata, `${a}.rope.dimension_count`, file, dim / heads));
  const rotaryDim = a === 'phi3' ? num(metadata, 'phi3.rope.dimension_count', file, headDim) : headDim;
  if (rotaryDim > headDim || rotaryDim % 2 !== 0) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: phi3.rope.dimension_count ${rotaryDim} is not an even number up to the head size ${headDim}`);
  }
  return {
    architecture: a,
    dim,
    layers,
    ffn: num(metadata, `${a}.feed_forward_length`, file),
    heads,
    kvHeads: num(metadata, `${a}.attention.head_count_kv`, file, heads),
    // llama.cpp writes the head size as attention.key_length where it is not dim / heads (Qwen3).
    headDim,
    vocab: num(metadata, `${a}.vocab_size`, file, Array.isArray(tokens) ? tokens.length : undefined),
    eps: positive(metadata, `${a}.attention.layer_norm_rms_epsilon`, file, 1e-5),
    ropeTheta: positive(metadata, `${a}.rope.freq_base`, file, 10000),
    tiedEmbeddings: !hasOutput,
    interleavedRope: a === 'llama',
    qkvBias: a === 'qwen2',
    qkNorm: a === 'qwen3',
    ...(a === 'gemma2' || a === 'gemma3' ? gemmaGgufConfig(metadata, file, a, dim, heads, layers, headDim) : {}),
    ...(a === 'phi3' ? { fusedProjections: true, slidingWindow: num(metadata, 'phi3.attention.sliding_window', file, 0) } : {}),
    ...(rotaryDim !== headDim ? { rotaryDim } : {}),
  };
}

export const LoadOptionsSchema = z
  .object({
    device: z.string().regex(/^(cpu|cuda(:\d{1,4})?)$/, expected('"cpu", "cuda" or "cuda:N"')).optional()
      .describe('Where the model runs and trains: "cpu", "cuda" (the first NVIDIA GPU) or "cuda:N". The GPU needs a CUDA build (TUNEKIT_CUDA=1 npm install) and cuBLAS 13 (the nvidia-cublas wheel PyTorch installs, or the CUDA toolkit). Default: "cpu"'),
    quantize: z.enum(['nf4', 'bf16', 'q8_0']).optional()
      .describe('Store the projection matrices as NF4 (QLoRA), bf16 or Q8_0 (GGUF files are re-quantized from their own format). Default: the weights stay as stored'),
    bf16WeightCache: z.boolean().optional()
      .describe('bf16 steps keep the frozen weights packed for the bf16 GEMM (2 bytes per weight for each direction, packed on the first step) instead of decoding them in every product. Default: on, unless the projections are NF4 (QLoRA: chosen to save memory) or the copy would take over a quarter of this machine\'s memory'),
  })
  .strict();
export type { LoadOptions };
// The schema accepts exactly the documented type (a compile-time check).
const schemaMatchesType: Same<z.input<typeof LoadOptionsSchema>, LoadOptions> = true;
void schemaMatchesType;

/** Whether bf16 steps keep packed weights: the option, else on when not NF4 and under a quarter of memory. */
function keepsWeightPanels(weights: number, o: z.output<typeof LoadOptionsSchema>): boolean {
  if (o.bf16WeightCache !== undefined) return o.bf16WeightCache;
  if (o.quantize === 'nf4') return false;
  return 4 * weights <= totalmem() / 4;
}

/** The frozen matrices' element count (what the bf16 weight panels copy, twice at 2 bytes). */
function llamaMatrices(c: NativeLlamaConfig): number {
  const q = c.heads * c.headDim, kv = c.kvHeads * c.headDim;
  return c.layers * c.dim * (2 * q + 2 * kv + 3 * c.ffn) + c.vocab * c.dim;
}
function gpt2Matrices(c: NativeGpt2Config): number {
  return c.layers * c.dim * (4 * c.dim + 2 * c.ffn) + c.vocab * c.dim;
}

/**
 * Loads a model: a GGUF file (architecture `llama`, `qwen2`, `qwen3`, `phi3`, `gemma2` or `gemma3`) or a Hugging Face
 * folder (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Phi3ForCausalLM,
 * Gemma2ForCausalLM, Gemma3ForCausalLM, GPT2LMHeadModel), with its tokenizer
 * when it has one.
 */
export async function loadModel(path: string, options: LoadOptions = {}): Promise<Model> {
  const o = parseOptions(LoadOptionsSchema, options, 'loadModel');
  const backend = prepareDevice(o.device ?? 'cpu');
  let isDir = false;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a GGUF model file or a Hugging Face folder at ${path}`);
  }
  if (!isDir && isPickle(path)) throw pickleRefusal(path, 'model');
  if (isDir) {
    const hf = await loadHfFolder(path, o.quantize);
    const tokenizer = await tokenizerFromFolder(path);
    const handles = Object.fromEntries(Object.entries(hf.tensors).map(([k, v]) => [k, v.handle]));
    if (hf.architecture === 'GPT2LMHeadModel') {
      const c = hf.config as NativeGpt2Config;
      const model: NativeModel = callNative(() => new native.Model('gpt2', { ...c, backend }, handles));
      const config: ModelConfig = {
        architecture: 'GPT2LMHeadModel', dim: c.dim, layers: c.layers, ffn: c.ffn, heads: c.heads, kvHeads: c.heads,
        headDim: c.dim / c.heads, vocab: c.vocab, eps: c.eps, ropeTheta: 0, tiedEmbeddings: true,
      };
      return wrapModel(GPT2, config, tokenizer, model, hf.tensors, keepsWeightPanels(gpt2Matrices(c), o));
    }
    const c = hf.config as NativeLlamaConfig;
    const model: NativeModel = callNative(() => new native.Model('llama', { ...c, backend }, handles));
    return wrapModel(c.fusedProjections ? PHI3 : LLAMA, { ...c, architecture: hf.architecture, ...('ropeScaling' in hf && hf.ropeScaling ? { ropeScaling: hf.ropeScaling } : {}), ...('maxPositions' in hf && hf.maxPositions ? { maxPositions: hf.maxPositions } : {}) }, tokenizer, model, hf.tensors, keepsWeightPanels(llamaMatrices(c), o));
  }
  const gguf = await openGguf(path);
  try {
    const arch = gguf.metadata.get('general.architecture');
    if (typeof arch !== 'string' || !GGUF_ARCHITECTURES.includes(arch)) {
      throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${gguf.file}: architecture ${JSON.stringify(arch)} is not supported yet; tunekit loads ${GGUF_ARCHITECTURES.map((x) => `"${x}"`).join(', ')}`);
    }
    const config = llamaConfig(gguf.metadata, gguf.file, gguf.tensors.has('output.weight'), arch);
    checkLayerCount(gguf.file, 'the file', `metadata ${arch}.block_count`, config.layers, [...gguf.tensors.keys()], /^blk\.(\d+)\./);
    // RoPE scaling: Llama 3.x files carry it as per-pair divisors (rope_freqs.weight), older ones as metadata.
    const freqs = gguf.tensors.has('rope_freqs.weight') ? await gguf.read('rope_freqs.weight') : undefined;
    const scalingKey = (key: string) => gguf.metadata.get(`${arch}.rope.scaling.${key}`);
    const contextLength = gguf.metadata.get(`${arch}.context_length`);
    if (typeof contextLength === 'number' && Number.isInteger(contextLength) && contextLength > 0) config.maxPositions = contextLength;
    // longrope (Phi-3 128k, Phi-3.5, Phi-4-mini): the short and long divisors as tensors; the engine
    // switches per forward as transformers does (llama.cpp picks one by the context size instead).
    if (gguf.tensors.has('rope_factors_long.weight') || gguf.tensors.has('rope_factors_short.weight')) {
      const pairs = (config.rotaryDim ?? config.headDim) / 2;
      const factors = async (name: string) => {
        const t = gguf.tensors.has(name) ? await gguf.read(name) : undefined;
        const v = t instanceof Tensor && t.dtype === 'f32' ? [...(t as Tensor<'f32'>).data] : [];
        if (v.length !== pairs || !v.every((x) => Number.isFinite(x) && x > 0)) {
          throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${gguf.file}: ${name} must hold ${pairs} positive f32 values (one per rotated pair) for longrope`);
        }
        return v;
      };
      const after = scalingKey('original_context_length');
      if (typeof after !== 'number' || !Number.isInteger(after) || after < 1) {
        throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${gguf.file}: longrope needs metadata ${arch}.rope.scaling.original_context_length (a positive integer)`);
      }
      const attention = scalingKey('attn_factor');
      Object.assign(config, {
        ropeFreqFactors: await factors('rope_factors_short.weight'), ropeFreqFactorsLong: await factors('rope_factors_long.weight'), ropeLongAfter: after,
        ...(typeof attention === 'number' && attention !== 1 ? { ropeAttentionFactor: attention } : {}),
      });
    } else {
      const scaling = ggufRopeScaling({
        type: scalingKey('type'), factor: scalingKey('factor') ?? gguf.metadata.get(`${arch}.rope.scale_linear`), original: scalingKey('original_context_length') ?? contextLength,
        betaFast: scalingKey('yarn_beta_fast'), betaSlow: scalingKey('yarn_beta_slow'), extFactor: scalingKey('yarn_ext_factor'), attnFactor: scalingKey('attn_factor'), yarnAttnFactor: scalingKey('yarn_attn_factor'), logMultiplier: scalingKey('yarn_log_multiplier'),
      }, freqs instanceof Tensor && freqs.dtype === 'f32' ? (freqs as Tensor<'f32'>).data : freqs ? new Float32Array(0) : undefined, config.rotaryDim ?? config.headDim, config.ropeTheta, gguf.file);
      if (scaling.factors) config.ropeFreqFactors = scaling.factors;
      if (scaling.attention !== 1) config.ropeAttentionFactor = scaling.attention;
      if (scaling.hf) config.ropeScaling = { ...scaling.hf };
    }
    // Tensors are read as stored (re-quantizing passes through fp32 one matrix at a time).
    checkFits(gguf.file, [...gguf.tensors.values()].reduce((a, t) => a + t.byteLength, 0));
    const tokenizer = gguf.metadata.has('tokenizer.ggml.model') ? tokenizerFromGguf(gguf.metadata, gguf.file) : null;
    const handles: Record<string, Tensor['handle'] | Weights['handle']> = {};
    const kept: Record<string, Tensor | Weights> = {};
    for (const name of gguf.tensors.keys()) {
      if (name === 'rope_freqs.weight' || name === 'rope_factors_long.weight' || name === 'rope_factors_short.weight') continue; // in the config above
      const stored = await gguf.read(name);
      // Phi-3's fused matrices become the engine's own projections (as stored: blocks of rows).
      const fused = arch === 'phi3' ? /^(blk\.\d+\.)(attn_qkv|ffn_up)\.weight$/.exec(name) : null;
      const blocks = fused ? fusedBlocks(fused[2] === 'attn_qkv' ? 'qkv' : 'gate_up', config) : [];
      const parts: [string, Tensor | Weights][] = fused
        ? splitRows(stored, blocks.map(([, n]) => n), `${gguf.file}: tensor ${name}`).map((p, i) => [`${fused[1]}${blocks[i]![0]}.weight`, p])
        : [[name, stored]];
      for (const [part, value] of parts) {
        let t = value;
        // Re-quantize projection matrices on request (the embedding / tied head stays as stored).
        if (o.quantize && /^blk\.\d+\.(attn_(q|k|v|output)|ffn_(gate|up|down))\.weight$/.test(part)) {
          const f32 = t instanceof Weights ? await t.dequantize() : (t as Tensor);
          if (f32.dtype === 'f32') t = await quantizeWeights(f32 as Tensor<'f32'>, { format: o.quantize });
        }
        handles[part] = t.handle;
        kept[part] = t;
      }
    }
    const model: NativeModel = callNative(() => new native.Model('llama', { ...config, backend }, handles));
    return wrapModel(config.fusedProjections ? PHI3 : LLAMA, config, tokenizer, model, kept, keepsWeightPanels(llamaMatrices(config), o));
  } finally {
    await gguf.close();
  }
}

