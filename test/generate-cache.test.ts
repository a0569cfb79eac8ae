// A generation session's key/value storage starts small and grows as tokens arrive, up to the
// session's capacity (a session opened for 50,000 tokens used to allocate all of them at once).
// Decoding across the growth must give the full forward's logits, for both families.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, openSafetensors, Tensor, writeSafetensors } from '../lib/index.js';
import { randomValues } from './helpers.js';

const fixtures = fileURLToPath(new URL('./reference/fixtures/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'tunekit-cache-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The tiny GPT-2 with 600 learned positions (its own 32 are too few to outgrow the first storage). */
async function longGpt2(): Promise<string> {
  const dir = join(work, 'gpt2-600');
  mkdirSync(dir, { recursive: true });
  const src = await openSafetensors(join(fixtures, 'tiny-gpt2', 'model.safetensors'));
  const all: Record<string, Tensor> = {};
  for (const name of src.names()) all[name] = await src.read(name);
  await src.close();
  const dim = all['transformer.wpe.weight']!.shape[1]!;
  all['transformer.wpe.weight'] = Tensor.from('f32', [600, dim], randomValues(600 * dim, 5).map((v) => v * 0.02));
  await writeSafetensors(join(dir, 'model.safetensors'), all);
  const config = JSON.parse(readFileSync(join(fixtures, 'tiny-gpt2', 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, n_positions: 600 }));
  return dir;
}

describe('generation sessions', () => {
  it.each(['tiny-llama', 'tiny-gpt2'])('%s: decoding past the first storage gives the full forward logits', async (family) => {
    const dir = family === 'tiny-gpt2' ? await longGpt2() : join(fixtures, family);
    const m = await loadModel(dir);
    const n = 300, V = m.config.vocab;
    const ids = Array.from({ length: n }, (_, i) => (i * 7919 + 13) % V);
    const full = await m.logits(ids);
    const near = (last: Tensor<'f32'>) => {
      let worst = 0, scale = 0;
      for (let i = 0; i < V; i++) {
        worst = Math.max(worst, Math.abs(last.data[i]! - full.data[(n - 1) * V + i]!));
        scale = Math.max(scale, Math.abs(full.data[(n - 1) * V + i]!));
      }
      return worst / scale;
    };
    // Token by token across the first storage's end, and in one chunk past it.
    const stepwise = m.native.createSession(400);
    expect(stepwise.capacity).toBe(400);
    await stepwise.decode(Tensor.from('i32', [250], ids.slice(0, 250)).handle);
    let last: Tensor<'f32'> | null = null;
    for (let i = 250; i < n; i++) last = new Tensor(await stepwise.decode(Tensor.from('i32', [1], [ids[i]!]).handle)) as Tensor<'f32'>;
    expect(stepwise.length).toBe(n);
    expect(near(last!)).toBeLessThan(1e-5);
    const chunked = m.native.createSession(400);
    await chunked.decode(Tensor.from('i32', [10], ids.slice(0, 10)).handle);
    expect(near(new Tensor(await chunked.decode(Tensor.from('i32', [n - 10], ids.slice(10)).handle)) as Tensor<'f32'>)).toBeLessThan(1e-5);
    expect(() => chunked.decode(Tensor.from('i32', [101], ids.slice(0, 101)).handle)).toThrow(/Expected at most 100 more tokens in this session \(capacity 400\)/);
  });
});
