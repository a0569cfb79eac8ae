// Shared test helpers: seeded random data and fp64 references, independent of the code under test.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Mulberry32: a small seeded PRNG so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [-1, 1). */
export function randomValues(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r() * 2 - 1;
  return out;
}

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
