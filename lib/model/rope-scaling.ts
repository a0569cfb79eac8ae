// RoPE scaling as per-pair frequency divisors (llama.cpp's rope_freqs.weight), the one form the
// engine takes: Llama 3.x's "llama3" rule, "linear" and YaRN ("yarn", Qwen2.5's long context) from
// a Hugging Face config, and from a GGUF file its rope_freqs tensor or its rope.scaling metadata.
// YaRN also scales cos and sin by its attention factor: hfRopeAttentionFactor. Schemes that depend
// on the sequence length (dynamic, longrope's short/long switch) are refused by name, and so is a
// GGUF file's yarn (llama.cpp computes it its own way).
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
