// RoPE scaling as per-pair frequency divisors (llama.cpp's rope_freqs.weight), the one form the
// engine takes: Llama 3.x's "llama3" rule, "linear" and YaRN ("yarn", Qwen2.5's long context) from
// a Hugging Face config, and from a GGUF file its rope_freqs tensor or its rope.scaling metadata.
// YaRN also scales cos and sin by its attention factor: hfRopeAttentionFactor. longrope (Phi) gives
// two sets, short and long, the engine picking one per forward as transformers does (hfLongrope).
// dynamic is refused by name, and so is a GGUF file's yarn (llama.cpp computes it its own way).
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
  if (type === 'yarn') {
    const y = yarn(s, headDim, theta, file, maxPositions);
    // inv_freq = base · (e + (1 − e) / factor), e the extrapolated share of pair i (transformers' _compute_yarn_parameters).
    return y.extrapolated.map((e) => 1 / (e + (1 - e) / y.factor));
  }
  throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: RoPE scaling "${type}" is not supported yet (tunekit reads "llama3", "linear" and "yarn")`);
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

/** The divisors of a GGUF file: its rope_freqs.weight values, or its rope.scaling metadata. */
export function ggufRopeFactors(type: string | undefined, factor: number | undefined, freqs: Float32Array | undefined, headDim: number, file: string): number[] | undefined {
  if (freqs) {
    if (freqs.length !== headDim / 2) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: rope_freqs.weight has ${freqs.length} values but the head dimension ${headDim} needs ${headDim / 2}`);
    const bad = freqs.findIndex((x) => !(Number.isFinite(x) && x > 0));
    if (bad >= 0) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: rope_freqs.weight[${bad}] is ${freqs[bad]}, expected a positive number`);
    return [...freqs];
  }
  if (type === undefined || type === 'none') return undefined;
  if (type === 'linear') {
    if (factor === undefined || !(factor > 0)) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: linear RoPE scaling needs a positive rope.scaling.factor but has ${factor}`);
    return Array(headDim / 2).fill(factor);
  }
  throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: RoPE scaling "${type}" is not supported yet (tunekit reads rope_freqs.weight and "linear")`);
}
