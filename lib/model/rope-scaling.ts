// RoPE scaling as per-pair frequency divisors (llama.cpp's rope_freqs.weight), the one form the
// engine takes: Llama 3.x's "llama3" rule and "linear" scaling from a Hugging Face config, and from
// a GGUF file its rope_freqs tensor or its rope.scaling metadata. Schemes that also change the
// attention (yarn, longrope) or depend on the sequence length (dynamic) are refused by name.
import { TunekitError } from '../errors.js';
import { show } from '../validate.js';

export interface RopeScaling {
  rope_type?: string;
  type?: string;
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
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
export function hfRopeFactors(s: RopeScaling | null | undefined, headDim: number, theta: number, file: string): number[] | undefined {
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
  throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: RoPE scaling "${type}" is not supported yet (tunekit reads "llama3" and "linear")`);
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
