// Shared test helpers: seeded random data and fp64 references, independent of the code under test.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export { randomValues, rng } from '../bench/random.js';

/**
 * A folder holding the tiny Llama (test/reference/make_tiny_llama.py) with the tiny tokenizer
 * beside it (vocabulary 303 <= the model's 1001): a small model that trains on text.
 */
export function tinyModelFolder(into: string, family: 'tiny-llama' | 'tiny-gpt2' = 'tiny-llama'): string {
  const fixtures = fileURLToPath(new URL('./reference/fixtures/', import.meta.url));
  mkdirSync(into, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(fixtures, family, f), join(into, f));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) copyFileSync(join(fixtures, 'tiny-tokenizer', f), join(into, f));
  return into;
}
