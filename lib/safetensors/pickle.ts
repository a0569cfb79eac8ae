// PyTorch pickles (pytorch_model.bin, *.pt, adapter_model.bin) are never loaded: unpickling runs
// whatever code the file holds. Where a user hands one over, the refusal says so and gives the
// one-time conversion to safetensors.
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { TunekitError } from '../errors.js';

const PICKLE_FILE = /\.(bin|pt|pth|ckpt|pkl)$/i;

/** Whether a path names a pickled checkpoint by its extension. */
export const isPickle = (path: string) => PICKLE_FILE.test(path);

/** The refusal for a pickled checkpoint: what it is, why not, and how to convert it. */
export function pickleRefusal(file: string, kind: 'model' | 'adapter'): TunekitError {
  const dir = dirname(file);
  const convert = kind === 'adapter'
    ? `python -c "import torch; from safetensors.torch import save_file; save_file(torch.load('${file}', weights_only=True), '${join(dir, 'adapter_model.safetensors')}')"`
    : `python -c "from transformers import AutoModelForCausalLM as M; M.from_pretrained('${dir}').save_pretrained('${dir}', safe_serialization=True)"`;
  return new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: ${basename(file)} is a PyTorch pickle, which tunekit never loads (unpickling runs whatever code the file holds). Convert it to safetensors once: ${convert}`);
}

/** The pickled checkpoint in a folder that has no safetensors, if any. */
export function pickleIn(dir: string, names: string[]): string | null {
  for (const n of names) if (existsSync(join(dir, n))) return join(dir, n);
  return null;
}
