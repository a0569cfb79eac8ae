// RoPE scaling as per-pair frequency divisors (llama.cpp's rope_freqs.weight), the one form the
// engine takes: Llama 3.x's "llama3" rule, "linear" and YaRN ("yarn", Qwen2.5's long context) from
// a Hugging Face config, and from a GGUF file its rope_freqs tensor or its rope.scaling metadata
// (linear, yarn). YaRN also scales cos and sin by its attention factor: hfRopeAttentionFactor.
// longrope (Phi) gives two sets, short and long, the engine picking one per forward as transformers
// does (hfLongrope). Dynamic NTK ("dynamic") changes the base instead, per forward (hfRopeDynamic).
import { TunekitError } from '../errors.js';
import { show } from '../validate.js';

export interface RopeScaling {
  rope_type?: string;
  type?: string;
  factor?: number | null;
  attention_factor?: number | null;
  mscale?: number | null;
  mscale_all_dim?: number | null;
  beta_fast?: number | null;
  beta_slow?: number | null;
  truncate?: boolean;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
  /** transformers 5 keeps Phi's partial_rotary_factor here. */
  partial_rotary_factor?: number;
  /** longrope: the divisors below and past original_max_position_embeddings. */
  short_factor?: number[];
  long_factor?: number[];
}

/** Whether a scaling block is longrope ("su" is its name in Phi-3's first configs). */
export function isLongrope(s: RopeScaling | null | undefined): boolean {
  const type = s?.rope_type ?? s?.type;
  return type === 'longrope' || type === 'su';
}

export interface Longrope {
  short: number[];
  long: number[];
  /** original_max_position_embeddings: a forward reaching this position (0-based) takes the long factors. */
  after: number;
  factor: number;
  attention: number;
}

/**
 * longrope (Phi-3 128k, Phi-3.5, Phi-4-mini) as transformers' _compute_longrope_parameters reads
 * it: divisors per rotated pair below and past the original context, the factor (else
 * max_position_embeddings / original), and the attention factor (else √(1 + ln factor / ln original)).
 */
export function hfLongrope(s: RopeScaling, pairs: number, file: string, maxPositions: number | undefined, original: number | undefined): Longrope {
  const after = s.original_max_position_embeddings ?? original;
  if (typeof after !== 'number' || !Number.isInteger(after) || after < 1) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: rope_scaling "longrope" needs a positive integer original_max_position_embeddings but has ${show(after)}`);
  }
  const list = (key: 'short_factor' | 'long_factor') => {
    const v = s[key];
    if (!Array.isArray(v) || v.length !== pairs || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0)) {
      throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: rope_scaling "longrope" needs ${key} as ${pairs} positive numbers (one per rotated pair) but has ${show(v)}`);
    }
    return v as number[];
  };
  const factor = s.factor ?? (maxPositions ? maxPositions / after : 1);
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor <= 0) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: rope_scaling "longrope" needs a positive number factor but has ${show(s.factor)}`);
  const attention = s.attention_factor ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(after)));
  return { short: list('short_factor'), long: list('long_factor'), after, factor, attention };
}

/** The base frequency of each pair as transformers computes it (fp32). */
function baseFrequencies(headDim: number, theta: number): number[] {
  return Array.from({ length: headDim / 2 }, (_, i) => Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim))));
}

function need(s: RopeScaling, key: keyof RopeScaling, file: string, type: string): number {
  const v = s[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: rope_scaling "${type}" needs a positive number ${key} but has ${show(v)}`);
  }
  return v;
}

/**
 * The divisors for a Hugging Face rope_scaling (or rope_parameters) block; undefined for none.
 * "llama3" follows transformers' _compute_llama3_parameters (as llama.cpp's converter writes it):
 * pairs of wavelength under original / high_freq_factor are kept, over original / low_freq_factor
 * divided by factor, and smoothed between.
 */
export function hfRopeFactors(s: RopeScaling | null | undefined, headDim: number, theta: number, file: string, maxPositions?: number): number[] | undefined {
  const type = s?.rope_type ?? s?.type ?? 'default';
  if (typeof type !== 'string') throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: expected rope_scaling's rope_type to be a string such as "llama3" but found ${show(type)}`);
  if (!s || type === 'default') return undefined;
  if (type === 'linear') return Array(headDim / 2).fill(need(s, 'factor', file, type));
  if (type === 'llama3') {
    const factor = need(s, 'factor', file, type), low = need(s, 'low_freq_factor', file, type), high = need(s, 'high_freq_factor', file, type);
    const old = need(s, 'original_max_position_embeddings', file, type);
    if (!(high > low)) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: rope_scaling "llama3" needs high_freq_factor > low_freq_factor but has ${high} and ${low}`);
    return baseFrequencies(headDim, theta).map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < old / high) return 1;
      if (wavelen > old / low) return factor;
      const smooth = (old / wavelen - low) / (high - low);
      return 1 / ((1 - smooth) / factor + smooth);
    });
  }
  if (type === 'yarn') return yarnDivisors(yarn(s, headDim, theta, file, maxPositions));
  if (type === 'dynamic') return undefined; // the base changes per forward: hfRopeDynamic
  throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: RoPE scaling "${type}" is not supported yet (tunekit reads "llama3", "linear", "yarn", "dynamic" and "longrope")`);
}

/** inv_freq = base · (e + (1 − e) / factor), e the extrapolated share of pair i (transformers' _compute_yarn_parameters, ggml's rope_yarn). */
function yarnDivisors(y: { factor: number; extrapolated: number[] }): number[] {
  return y.extrapolated.map((e) => 1 / (e + (1 - e) / y.factor));
}

/**
 * Dynamic NTK as transformers computes it (_compute_dynamic_ntk_parameters, dynamic_rope_update):
 * the factor, and max_position_embeddings, up to which RoPE is plain; a longer forward takes the
 * base θ·(f·L/max − (f − 1))^(d/(d − 2)) for its length L. undefined for another type.
 */
export function hfRopeDynamic(s: RopeScaling | null | undefined, file: string, maxPositions: number | undefined): { factor: number; after: number } | undefined {
  if (!s || (s.rope_type ?? s.type) !== 'dynamic') return undefined;
  const factor = need(s, 'factor', file, 'dynamic');
  if (typeof maxPositions !== 'number' || !Number.isInteger(maxPositions) || maxPositions < 1) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: rope_scaling "dynamic" needs max_position_embeddings (a positive integer) but has ${show(maxPositions)}`);
  }
  return { factor, after: maxPositions };
}

/** YaRN's factor, attention factor and each pair's extrapolated share, as transformers computes them. */
function yarn(s: RopeScaling, headDim: number, theta: number, file: string, maxPositions?: number) {
  const old = need(s, 'original_max_position_embeddings', file, 'yarn');
  const factor = s.factor ?? (maxPositions ? maxPositions / old : undefined);
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor <= 0) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: rope_scaling "yarn" needs a positive number factor but has ${show(s.factor)}`);
  const mscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
  const attention = s.attention_factor ?? (s.mscale && s.mscale_all_dim ? mscale(factor, s.mscale) / mscale(factor, s.mscale_all_dim) : mscale(factor));
  const fast = s.beta_fast || 32, slow = s.beta_slow || 1;
  const dimOf = (rotations: number) => (headDim * Math.log(old / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
  const truncate = s.truncate ?? true;
  let low = dimOf(fast), high = dimOf(slow);
  if (truncate) low = Math.floor(low), high = Math.ceil(high);
  low = Math.max(low, 0), high = Math.min(high, headDim - 1);
  if (low === high) high += 0.001;
  const extrapolated = Array.from({ length: headDim / 2 }, (_, i) => 1 - Math.min(1, Math.max(0, Math.fround((i - low) / (high - low)))));
  return { factor, attention, extrapolated };
}

/** The factor YaRN multiplies cos and sin by (so every attention score by its square); 1 for the others. */
export function hfRopeAttentionFactor(s: RopeScaling | null | undefined, headDim: number, theta: number, file: string, maxPositions?: number): number {
  const type = s?.rope_type ?? s?.type;
  return s && type === 'yarn' ? yarn(s, headDim, theta, file, maxPositions).attention : 1;
}

/** A GGUF file's rope.scaling metadata (llama.cpp's keys `<arch>.rope.scaling.*`), as read. */
export interface GgufScalingKeys {
  type?: unknown;
  /** rope.scaling.factor, else the older rope.scale_linear. */
  factor?: unknown;
  /** rope.scaling.original_context_length, else context_length (llama.cpp's n_ctx_orig_yarn). */
  original?: unknown;
  betaFast?: unknown;
  betaSlow?: unknown;
  extFactor?: unknown;
  /** rope.scaling.attn_factor: multiplies YaRN's own attention factor. */
  attnFactor?: unknown;
  /** rope.scaling.yarn_attn_factor: the converter's copy of transformers' attention_factor. */
  yarnAttnFactor?: unknown;
  logMultiplier?: unknown;
}

export interface GgufRopeScaling {
  factors?: number[];
  attention: number;
  /** The Hugging Face rope_scaling it equals (a merged export writes it). */
  hf?: RopeScaling;
}

/**
 * The divisors of a GGUF file: its rope_freqs.weight values, or its rope.scaling metadata. YaRN
 * as llama.cpp computes it (llama-context.cpp, ggml's rope_yarn): pair i mixes extrapolated and
 * interpolated angles by ggml's ramp (yarn_ext_factor 1, its default for yarn), the correction
 * dimensions from yarn_beta_fast / yarn_beta_slow (32, 1) over the original context, and cos and
 * sin are scaled by (0.1·ln factor + 1) · attn_factor: transformers' YaRN for the same parameters.
 * The converter copies beta_fast, beta_slow and attention_factor from the config as yarn_* keys,
 * which llama.cpp reads for a few architectures only (grok, mistral3); tunekit honors them as
 * transformers does with the config they came from.
 */
export function ggufRopeScaling(s: GgufScalingKeys, freqs: Float32Array | undefined, rotaryDim: number, theta: number, file: string): GgufRopeScaling {
  if (freqs) {
    if (freqs.length !== rotaryDim / 2) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: rope_freqs.weight has ${freqs.length} values but the rotated dimension ${rotaryDim} needs ${rotaryDim / 2}`);
    const bad = freqs.findIndex((x) => !(Number.isFinite(x) && x > 0));
    if (bad >= 0) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: rope_freqs.weight[${bad}] is ${freqs[bad]}, expected a positive number`);
    return { factors: [...freqs], attention: 1 };
  }
  const { type } = s;
  if (type === undefined || type === 'none') return { attention: 1 };
  const positiveKey = (v: unknown, key: string, fallback?: number): number => {
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: ${show(type)} RoPE scaling needs metadata rope.scaling.${key} to be a positive number but it is ${show(v)}`);
    return v;
  };
  if (type === 'linear') return { factors: Array(rotaryDim / 2).fill(positiveKey(s.factor, 'factor')), attention: 1 };
  if (type === 'yarn') {
    // llama.cpp's sentinel -1 (or no key) means 1 for yarn; anything else changes the mix.
    const ext = s.extFactor === undefined || (typeof s.extFactor === 'number' && s.extFactor < 0) ? 1 : s.extFactor;
    if (ext !== 1) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: YaRN with rope.scaling.yarn_ext_factor ${show(ext)} is not supported yet (tunekit reads 1, llama.cpp's default)`);
    if (s.logMultiplier !== undefined && s.logMultiplier !== 0) {
      throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: YaRN with rope.scaling.yarn_log_multiplier ${show(s.logMultiplier)} (DeepSeek's mscale_all_dim) is not supported yet`);
    }
    const hf: RopeScaling = {
      rope_type: 'yarn', factor: positiveKey(s.factor, 'factor'), original_max_position_embeddings: positiveKey(s.original, 'original_context_length'),
      beta_fast: positiveKey(s.betaFast, 'yarn_beta_fast', 32), beta_slow: positiveKey(s.betaSlow, 'yarn_beta_slow', 1),
      ...(s.yarnAttnFactor !== undefined ? { attention_factor: positiveKey(s.yarnAttnFactor, 'yarn_attn_factor') } : {}),
    };
    const y = yarn(hf, rotaryDim, theta, file), attnFactor = positiveKey(s.attnFactor, 'attn_factor', 1);
    const attention = y.attention * attnFactor;
    return { factors: yarnDivisors(y), attention, hf: { ...hf, ...(attention !== y.attention ? { attention_factor: attention } : {}) } };
  }
  throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: RoPE scaling ${show(type)} is not supported yet (tunekit reads rope_freqs.weight, "linear" and "yarn")`);
}
