// loadModel: a model file on disk -> weights in native memory, a tokenizer and a forward pass.
// Now: GGUF files of the `llama` architecture (Llama, Mistral-style and SmolLM checkpoints as
// llama.cpp converts them), quantized matrices kept quantized. Hugging Face folders, GPT-2 and
// training come with the rest of the model engine.
import { stat } from 'node:fs/promises';
import { awaitNative, callNative, TunekitError } from '../errors.js';
import type { GgufValue } from '../gguf/format.js';
import { openGguf } from '../gguf/read.js';
import { native, type NativeLlamaConfig, type NativeLlamaModel } from '../native.js';
import { Tensor } from '../tensor.js';
import { tokenizerFromGguf, type TextTokenizer } from '../tokenizer/gguf.js';
import { Weights } from '../weights.js';
import { generate, type GenerateOptions, type GenerateStep } from './generate.js';

export interface ModelConfig extends NativeLlamaConfig {
  architecture: string;
}

export interface Model {
  readonly config: ModelConfig;
  readonly tokenizer: TextTokenizer;
  /** Logits [tokens, vocab] for one sequence of token ids (positions 0..n-1). */
  logits(tokenIds: ArrayLike<number>): Promise<Tensor<'f32'>>;
  /** Streams a continuation of the prompt (text or token ids), piece by piece, using a KV cache. */
  generate(prompt: string | ArrayLike<number>, options?: GenerateOptions): AsyncGenerator<GenerateStep>;
  /** The whole continuation as one string. */
  generateText(prompt: string | ArrayLike<number>, options?: GenerateOptions): Promise<string>;
  /** @internal The addon's model object. */
  readonly native: NativeLlamaModel;
}

function num(metadata: Map<string, GgufValue>, key: string, file: string, fallback?: number): number {
  const v = metadata.get(key);
  if (typeof v === 'number') return v;
  if (fallback !== undefined) return fallback;
  throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: metadata ${key} is missing or not a number`);
}

function llamaConfig(metadata: Map<string, GgufValue>, file: string, hasOutput: boolean): ModelConfig {
  const a = 'llama';
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
  };
}

/** Loads a GGUF model (architecture `llama`) with its tokenizer. */
export async function loadModel(path: string): Promise<Model> {
  try {
    if (!(await stat(path)).isFile()) throw new Error('not a file');
  } catch {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a GGUF model file at ${path}`);
  }
  const gguf = await openGguf(path);
  try {
    const arch = gguf.metadata.get('general.architecture');
    if (arch !== 'llama') {
      throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${gguf.file}: architecture ${JSON.stringify(arch)} is not supported yet; tunekit loads "llama"`);
    }
    const config = llamaConfig(gguf.metadata, gguf.file, gguf.tensors.has('output.weight'));
    const tokenizer = tokenizerFromGguf(gguf.metadata);
    const handles: Record<string, Tensor['handle'] | Weights['handle']> = {};
    for (const name of gguf.tensors.keys()) handles[name] = (await gguf.read(name)).handle;
    const model: NativeLlamaModel = callNative(() => new native.LlamaModel(config, handles));
    return {
      config,
      tokenizer,
      native: model,
      async logits(tokenIds) {
        const ids = Tensor.from('i32', [tokenIds.length], tokenIds);
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
    };
  } finally {
    await gguf.close();
  }
}
