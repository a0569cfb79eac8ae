// Reading numbers out of a Hugging Face config.json, each checked and named in the error:
// the one pair of checks every family's loader (hf.ts, gemma.ts) uses.
import { TunekitError } from '../errors.js';
import { show } from '../validate.js';

export interface ConfigValues {
  /** cfg[key] (or the fallback) as a positive integer. */
  int(key: string, fallback?: number): number;
  /** v (or the fallback) as a positive finite number (eps <= 0 or a RoPE base <= 0 gives NaN logits); key names it. */
  positive(key: string, v: unknown, fallback: number): number;
}

export function configValues(cfg: Record<string, unknown>, file: string): ConfigValues {
  return {
    int(key, fallback) {
      const v = cfg[key] ?? fallback;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: expected a positive integer ${key} but found ${show(v)}`);
      return v;
    },
    positive(key, v, fallback) {
      const x = v ?? fallback;
      if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: expected a positive number ${key} but found ${show(x)}`);
      return x;
    },
  };
}
