// Gemma 3 on the Llama-family engine: what its config (Hugging Face) or metadata (GGUF) adds to
// the Llama one. Gemma scales the embedding by √dim, gates the MLP with tanh GELU, puts an RMSNorm
// on each branch's output as well as its input, normalizes each head's q and k, scales attention
// by query_pre_attn_scalar^-½, and interleaves sliding-window layers (their own RoPE base) with
// global ones. Its RMSNorms multiply by (1 + w): llama.cpp's converter stores 1 + w in GGUF
// files, and a Hugging Face folder's norms get the 1 added here, so the engine's plain RMSNorm
// runs both (a merged export takes it off again).
// Gemma 2 (soft-capped attention scores and logits) and Gemma 3's multimodal folders are refused
// by name.
import { TunekitError } from '../errors.js';
import type { GgufValue } from '../gguf/format.js';
import type { NativeLlamaConfig } from '../native.js';
import { show } from '../validate.js';
import type { ConfigValues } from './config-values.js';
import type { RopeScaling } from './rope-scaling.js';
import type { ModelConfig } from './types.js';

export const GEMMA3_HF = 'Gemma3ForCausalLM';

// Hugging Face's layer module names -> the engine's (GGUF) names, where Gemma differs from Llama:
// post_attention_layernorm is the attention's post-norm, the MLP's input norm is pre_feedforward.
export const GEMMA_NORM_NAMES: [string, string][] = [
  ['input_layernorm', 'attn_norm'],
  ['post_attention_layernorm', 'post_attention_norm'],
  ['pre_feedforward_layernorm', 'ffn_norm'],
  ['post_feedforward_layernorm', 'post_ffw_norm'],
];

/** The transformers' default layer pattern: every sixth layer global, the others sliding. */
function defaultPattern(layers: number, every: number): boolean[] {
  return Array.from({ length: layers }, (_, i) => (i + 1) % every !== 0);
}

export interface GemmaHfRope {
  /** The global layers' base and scaling block (rope_scaling / rope_parameters.full_attention). */
  theta: number;
  scaling?: RopeScaling;
  /** The sliding layers' base. */
  localTheta: number;
}

/** The Gemma 3 part of a text model's config.json (transformers 4 and 5 spellings). */
export function gemmaHfConfig(cfg: Record<string, unknown>, file: string, { int, positive }: ConfigValues, dim: number, layers: number): {
  native: Partial<NativeLlamaConfig>;
  rope: GemmaHfRope;
} {
  for (const key of ['attn_logit_softcapping', 'final_logit_softcapping']) {
    if (cfg[key] !== undefined && cfg[key] !== null) {
      throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: ${key} ${show(cfg[key])} is not supported yet (tunekit runs Gemma 3, which has none)`);
    }
  }
  if (cfg.use_bidirectional_attention === true) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: use_bidirectional_attention (EmbeddingGemma) is not supported; tunekit trains causal language models`);
  const act = cfg.hidden_activation ?? cfg.hidden_act ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh') throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: hidden_activation ${show(act)} is not supported yet; Gemma 3 uses "gelu_pytorch_tanh"`);
  const window = int('sliding_window', 4096);
  let sliding: boolean[];
  if (cfg.layer_types !== undefined && cfg.layer_types !== null) {
    const types = cfg.layer_types;
    if (!Array.isArray(types) || types.length !== layers || !types.every((t) => t === 'sliding_attention' || t === 'full_attention')) {
      throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: expected layer_types to be ${layers} entries of "sliding_attention" or "full_attention" but found ${show(types)}`);
    }
    sliding = types.map((t) => t === 'sliding_attention');
  } else {
    sliding = defaultPattern(layers, int('sliding_window_pattern', 6));
  }
  const scalar = positive('query_pre_attn_scalar', cfg.query_pre_attn_scalar, 256);
  // transformers 5: rope_parameters per layer type; 4: rope_theta, rope_local_base_freq, rope_scaling.
  const params = cfg.rope_parameters as Record<string, (RopeScaling & { rope_theta?: number }) | undefined> | undefined;
  const full = params?.full_attention, local = params?.sliding_attention;
  if (local && (local.rope_type ?? 'default') !== 'default') {
    throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: RoPE scaling ${show(local.rope_type)} on the sliding layers is not supported`);
  }
  const scaling = (cfg.rope_scaling as RopeScaling | null | undefined) ?? full;
  return {
    native: {
      embedScale: Math.sqrt(dim),
      activation: 'gelu_tanh',
      postNorms: true,
      qkNorm: true,
      queryPreAttnScalar: scalar,
      layerWindows: sliding.map((s) => (s ? window : 0)),
    },
    rope: {
      theta: positive('rope_theta', full?.rope_theta ?? cfg.rope_theta, 1_000_000),
      ...(scaling ? { scaling } : {}),
      localTheta: positive('rope_local_base_freq', local?.rope_theta ?? cfg.rope_local_base_freq, 10_000),
    },
  };
}

/** The Gemma 3 part of a GGUF file's metadata, as llama.cpp reads it (llama-model.cpp, LLM_ARCH_GEMMA3). */
export function gemmaGgufConfig(metadata: Map<string, GgufValue>, file: string, dim: number, heads: number, layers: number, headDim: number): Partial<NativeLlamaConfig> {
  const window = metadata.get('gemma3.attention.sliding_window');
  if (typeof window !== 'number' || !Number.isInteger(window) || window < 1) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: metadata gemma3.attention.sliding_window is missing or not a positive integer`);
  }
  for (const key of ['gemma3.attn_logit_softcapping', 'gemma3.final_logit_softcapping']) {
    if (metadata.has(key)) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: metadata ${key} (soft-capping) is not supported yet`);
  }
  return {
    embedScale: Math.sqrt(dim),
    activation: 'gelu_tanh',
    postNorms: true,
    qkNorm: true,
    // llama.cpp: 1/√head_dim, except the 27B (62 layers): 1/√(dim / heads), as Google's config has it.
    queryPreAttnScalar: layers === 62 ? dim / heads : headDim,
    // llama.cpp's fixed pattern (every sixth layer global) and local base.
    layerWindows: defaultPattern(layers, 6).map((s) => (s ? window : 0)),
    ropeThetaLocal: 10_000,
  };
}

/** The config.json transformers reads the engine's Gemma 3 as (a merged export). */
export function gemmaHfConfigOf(c: ModelConfig): Record<string, unknown> {
  const windows = c.layerWindows ?? [];
  return {
    architectures: [GEMMA3_HF], model_type: 'gemma3_text',
    hidden_size: c.dim, intermediate_size: c.ffn, num_hidden_layers: c.layers, num_attention_heads: c.heads,
    num_key_value_heads: c.kvHeads, head_dim: c.headDim, vocab_size: c.vocab, rms_norm_eps: c.eps,
    hidden_activation: 'gelu_pytorch_tanh', query_pre_attn_scalar: c.queryPreAttnScalar ?? c.headDim,
    sliding_window: Math.max(0, ...windows), layer_types: windows.map((w) => (w > 0 ? 'sliding_attention' : 'full_attention')),
    rope_theta: c.ropeTheta, rope_local_base_freq: c.ropeThetaLocal ?? c.ropeTheta,
    ...(c.ropeScaling ? { rope_scaling: c.ropeScaling } : {}),
    tie_word_embeddings: c.tiedEmbeddings, max_position_embeddings: 32768, attention_bias: false,
    attn_logit_softcapping: null, final_logit_softcapping: null, torch_dtype: 'float32',
  };
}
