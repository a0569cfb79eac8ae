// Gemma 2 and Gemma 3 on the Llama-family engine: what their config (Hugging Face) or metadata
// (GGUF) adds to the Llama one. Gemma scales the embedding by √dim, gates the MLP with tanh GELU,
// puts an RMSNorm on each branch's output as well as its input, scales attention by
// query_pre_attn_scalar^-½, and interleaves sliding-window layers with global ones. Gemma 2
// soft-caps the attention scores and the final logits (cap·tanh(x / cap)) and alternates its
// layers; Gemma 3 normalizes each head's q and k, gives its sliding layers their own RoPE base and
// puts a global layer after every five. Their RMSNorms multiply by (1 + w): llama.cpp's converter
// stores 1 + w in GGUF files, and a Hugging Face folder's norms get the 1 added here, so the
// engine's plain RMSNorm runs both (a merged export takes it off again).
// Gemma 3's multimodal folders (Gemma3ForConditionalGeneration) give their language model (hf.ts).
import { TunekitError } from '../errors.js';
import type { GgufValue } from '../gguf/format.js';
import type { NativeLlamaConfig } from '../native.js';
import { show } from '../validate.js';
import type { ConfigValues } from './config-values.js';
import type { RopeScaling } from './rope-scaling.js';
import type { ModelConfig } from './types.js';

export const GEMMA3_HF = 'Gemma3ForCausalLM';
export const GEMMA2_HF = 'Gemma2ForCausalLM';
/** Gemma 3 4B+ with its vision tower: tunekit runs its language model. */
export const GEMMA3_MM_HF = 'Gemma3ForConditionalGeneration';

/** What Gemma3TextConfig defaults to where a multimodal folder's text_config leaves a field out (as the hub's do). */
export const GEMMA3_TEXT_DEFAULTS: Record<string, unknown> = {
  vocab_size: 262_208, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8,
  num_key_value_heads: 4, head_dim: 256, rms_norm_eps: 1e-6, query_pre_attn_scalar: 256, sliding_window: 4096,
  max_position_embeddings: 131_072, tie_word_embeddings: true, hidden_activation: 'gelu_pytorch_tanh',
};

/** Which Gemma an architecture (a Hugging Face class or a GGUF architecture) is; 0: none. */
export function gemmaGeneration(architecture: string): 0 | 2 | 3 {
  if (architecture === GEMMA3_HF || architecture === GEMMA3_MM_HF || architecture === 'gemma3') return 3;
  return architecture === GEMMA2_HF || architecture === 'gemma2' ? 2 : 0;
}

// Hugging Face's layer module names -> the engine's (GGUF) names, where Gemma differs from Llama:
// post_attention_layernorm is the attention's post-norm, the MLP's input norm is pre_feedforward.
export const GEMMA_NORM_NAMES: [string, string][] = [
  ['input_layernorm', 'attn_norm'],
  ['post_attention_layernorm', 'post_attention_norm'],
  ['pre_feedforward_layernorm', 'ffn_norm'],
  ['post_feedforward_layernorm', 'post_ffw_norm'],
];

/** The transformers' and llama.cpp's default layer pattern: every `every`-th layer global, the others sliding. */
function defaultPattern(layers: number, every: number): boolean[] {
  return Array.from({ length: layers }, (_, i) => (i + 1) % every !== 0);
}

export interface GemmaHfRope {
  /** The global layers' base and scaling block (rope_scaling / rope_parameters.full_attention). */
  theta: number;
  scaling?: RopeScaling;
  /** Gemma 3: the sliding layers' base (Gemma 2 has one base for all). */
  localTheta?: number;
}

/** The Gemma 2 or 3 part of a text model's config.json (transformers 4 and 5 spellings). */
export function gemmaHfConfig(cfg: Record<string, unknown>, file: string, { int, positive }: ConfigValues, dim: number, layers: number, generation: 2 | 3): {
  native: Partial<NativeLlamaConfig>;
  rope: GemmaHfRope;
} {
  // Soft-capping: null turns it off; absent, the config class's default (Gemma 2: 50 and 30; Gemma 3: none).
  const cap = (key: string, fallback: number) => (cfg[key] === null ? 0 : cfg[key] === undefined ? fallback : positive(key, cfg[key], fallback));
  const attnSoftcap = cap('attn_logit_softcapping', generation === 2 ? 50 : 0), logitSoftcap = cap('final_logit_softcapping', generation === 2 ? 30 : 0);
  if (cfg.use_bidirectional_attention === true) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: use_bidirectional_attention (EmbeddingGemma) is not supported; tunekit trains causal language models`);
  const act = cfg.hidden_activation ?? cfg.hidden_act ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh') throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: hidden_activation ${show(act)} is not supported yet; Gemma uses "gelu_pytorch_tanh"`);
  const window = int('sliding_window', 4096);
  let sliding: boolean[];
  if (cfg.layer_types !== undefined && cfg.layer_types !== null) {
    const types = cfg.layer_types;
    if (!Array.isArray(types) || types.length !== layers || !types.every((t) => t === 'sliding_attention' || t === 'full_attention')) {
      throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: expected layer_types to be ${layers} entries of "sliding_attention" or "full_attention" but found ${show(types)}`);
    }
    sliding = types.map((t) => t === 'sliding_attention');
  } else {
    sliding = defaultPattern(layers, generation === 2 ? 2 : int('sliding_window_pattern', 6));
  }
  const scalar = positive('query_pre_attn_scalar', cfg.query_pre_attn_scalar, 256);
  const native: Partial<NativeLlamaConfig> = {
    embedScale: Math.sqrt(dim),
    activation: 'gelu_tanh',
    postNorms: true,
    qkNorm: generation === 3,
    queryPreAttnScalar: scalar,
    layerWindows: sliding.map((s) => (s ? window : 0)),
    ...(attnSoftcap ? { attnSoftcap } : {}),
    ...(logitSoftcap ? { logitSoftcap } : {}),
  };
  // transformers 5: rope_parameters (Gemma 3: per layer type); 4: rope_theta, rope_local_base_freq, rope_scaling.
  const params = cfg.rope_parameters as Record<string, unknown> | undefined;
  if (generation === 2) {
    const flat = params as (RopeScaling & { rope_theta?: number }) | undefined;
    const scaling = (cfg.rope_scaling as RopeScaling | null | undefined) ?? flat;
    return { native, rope: { theta: positive('rope_theta', flat?.rope_theta ?? cfg.rope_theta, 10_000), ...(scaling ? { scaling } : {}) } };
  }
  const full = params?.full_attention as (RopeScaling & { rope_theta?: number }) | undefined;
  const local = params?.sliding_attention as (RopeScaling & { rope_theta?: number }) | undefined;
  if (local && (local.rope_type ?? 'default') !== 'default') {
    throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: RoPE scaling ${show(local.rope_type)} on the sliding layers is not supported`);
  }
  const scaling = (cfg.rope_scaling as RopeScaling | null | undefined) ?? full;
  return {
    native,
    rope: {
      theta: positive('rope_theta', full?.rope_theta ?? cfg.rope_theta, 1_000_000),
      ...(scaling ? { scaling } : {}),
      localTheta: positive('rope_local_base_freq', local?.rope_theta ?? cfg.rope_local_base_freq, 10_000),
    },
  };
}

/** The Gemma 2 or 3 part of a GGUF file's metadata, as llama.cpp reads it (llama-model.cpp, LLM_ARCH_GEMMA2 / GEMMA3). */
export function gemmaGgufConfig(metadata: Map<string, GgufValue>, file: string, arch: 'gemma2' | 'gemma3', dim: number, heads: number, layers: number, headDim: number): Partial<NativeLlamaConfig> {
  const positiveKey = (key: string, fallback?: number) => {
    const v = metadata.get(key) ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: metadata ${key} is ${v === undefined ? 'missing' : `${show(v)}`}; expected a positive number`);
    return v;
  };
  // llama.cpp: Gemma 2's window defaults to 4096; Gemma 3's must be there.
  const window = positiveKey(`${arch}.attention.sliding_window`, arch === 'gemma2' ? 4096 : undefined);
  if (!Number.isInteger(window)) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: metadata ${arch}.attention.sliding_window ${window} is not an integer`);
  if (arch === 'gemma3') {
    // llama.cpp applies no soft-capping to gemma3 files: a file asking for it is not one it runs as written.
    for (const key of ['gemma3.attn_logit_softcapping', 'gemma3.final_logit_softcapping']) {
      if (metadata.has(key)) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: metadata ${key} (soft-capping in a gemma3 file, which llama.cpp ignores) is not supported`);
    }
  }
  // llama.cpp: 1/√head_dim, except the 27B (Gemma 2: 46 layers, Gemma 3: 62): 1/√(dim / heads), as Google's config has it.
  const big = arch === 'gemma2' ? layers === 46 : layers === 62;
  return {
    embedScale: Math.sqrt(dim),
    activation: 'gelu_tanh',
    postNorms: true,
    qkNorm: arch === 'gemma3',
    queryPreAttnScalar: big ? dim / heads : headDim,
    // llama.cpp's fixed patterns (Gemma 2: every second layer global; Gemma 3: every sixth) and Gemma 3's local base.
    layerWindows: defaultPattern(layers, arch === 'gemma2' ? 2 : 6).map((s) => (s ? window : 0)),
    ...(arch === 'gemma3'
      ? { ropeThetaLocal: 10_000 }
      : { attnSoftcap: positiveKey('gemma2.attn_logit_softcapping', 50), logitSoftcap: positiveKey('gemma2.final_logit_softcapping', 30) }),
  };
}

/** The config.json transformers reads the engine's Gemma 2 or 3 as (a merged export). */
export function gemmaHfConfigOf(c: ModelConfig): Record<string, unknown> {
  const windows = c.layerWindows ?? [];
  const two = gemmaGeneration(c.architecture) === 2;
  return {
    architectures: [two ? GEMMA2_HF : GEMMA3_HF], model_type: two ? 'gemma2' : 'gemma3_text',
    hidden_size: c.dim, intermediate_size: c.ffn, num_hidden_layers: c.layers, num_attention_heads: c.heads,
    num_key_value_heads: c.kvHeads, head_dim: c.headDim, vocab_size: c.vocab, rms_norm_eps: c.eps,
    hidden_activation: 'gelu_pytorch_tanh', query_pre_attn_scalar: c.queryPreAttnScalar ?? c.headDim,
    sliding_window: Math.max(0, ...windows), layer_types: windows.map((w) => (w > 0 ? 'sliding_attention' : 'full_attention')),
    rope_theta: c.ropeTheta, ...(two ? {} : { rope_local_base_freq: c.ropeThetaLocal ?? c.ropeTheta }),
    ...(c.ropeScaling ? { rope_scaling: c.ropeScaling } : {}),
    tie_word_embeddings: c.tiedEmbeddings, max_position_embeddings: c.maxPositions ?? (two ? 8192 : 32768), attention_bias: false,
    attn_logit_softcapping: c.attnSoftcap || null, final_logit_softcapping: c.logitSoftcap || null, torch_dtype: 'float32',
  };
}
