// Hyperparameter search: grid / random / successive halving on a synthetic objective (exact
// bookkeeping), resuming an interrupted search from its state file, and `tunekit search` on the
// tiny model writing a best.json that `tunekit train` accepts.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tinyModelFolder } from './helpers.js';
import { afterAll, describe, expect, it } from 'vitest';
import { searchHyperparameters, withParams, type Params } from '../lib/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'tunekit-search-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// A bowl with its minimum at lr = 1e-3, r = 8; longer budgets lower every value a little.
const objective = async (p: Params, budget: number | null) => ({
  value: (Math.log10(Number(p['training.lr'])) + 3) ** 2 + (Number(p['lora.r'] ?? 8) - 8) ** 2 / 64 + 1 / (budget ?? 1000),
  steps: budget ?? 10,
});

describe('search strategies', () => {
  it('grid tries every combination and picks the minimum', async () => {
    const r = await searchHyperparameters({ strategy: 'grid', space: { 'training.lr': [1e-4, 1e-3, 1e-2], 'lora.r': [4, 8] } }, objective);
    expect(r.trials).toHaveLength(6);
    expect(r.best.params).toEqual({ 'training.lr': 1e-3, 'lora.r': 8 });
  });

  it('random search is seeded, and samples log ranges within bounds', async () => {
    const space = { 'training.lr': { min: 1e-5, max: 1e-1, log: true }, 'lora.r': [4, 8, 16] };
    const a = await searchHyperparameters({ strategy: 'random', trials: 7, seed: 3, space }, objective);
    const b = await searchHyperparameters({ strategy: 'random', trials: 7, seed: 3, space }, objective);
    const c = await searchHyperparameters({ strategy: 'random', trials: 7, seed: 4, space }, objective);
    expect(a.trials.map((t) => t.params)).toEqual(b.trials.map((t) => t.params));
    expect(a.trials.map((t) => t.params)).not.toEqual(c.trials.map((t) => t.params));
    for (const t of a.trials) expect(Number(t.params['training.lr'])).toBeGreaterThanOrEqual(1e-5), expect(Number(t.params['training.lr'])).toBeLessThanOrEqual(1e-1);
    expect(a.best.value).toBe(Math.min(...a.trials.map((t) => t.value)));
  });

  it('successive halving keeps the best third and triples the budget', async () => {
    const r = await searchHyperparameters({ strategy: 'successive-halving', trials: 9, eta: 3, budgetSteps: 10, seed: 1, space: { 'training.lr': { min: 1e-4, max: 1e-2, log: true } } }, objective);
    expect(r.trials.map((t) => t.budget)).toEqual([...Array(9).fill(10), ...Array(3).fill(30), 90]);
    const first = r.trials.slice(0, 9).sort((x, y) => x.value - y.value).slice(0, 3).map((t) => t.params);
    expect(r.trials.slice(9, 12).map((t) => t.params)).toEqual(first);
    expect(r.best.budget).toBe(90);
  });

  it('resumes an interrupted search from its state file', async () => {
    const stateFile = join(work, 'state.json');
    const options = { strategy: 'grid' as const, space: { 'training.lr': [1e-4, 1e-3, 1e-2], 'lora.r': [4, 8] }, stateFile };
    let calls = 0;
    const flaky = async (p: Params, b: number | null) => {
      if (++calls === 4) throw new Error('killed');
      return objective(p, b);
    };
    await expect(searchHyperparameters(options, flaky)).rejects.toThrow('killed');
    expect(JSON.parse(readFileSync(stateFile, 'utf8')).trials).toHaveLength(3);
    let ran = 0;
    const r = await searchHyperparameters(options, async (p, b) => (ran++, objective(p, b)));
    expect(ran).toBe(3);
    expect(r.resumed).toBe(3);
    const whole = await searchHyperparameters({ ...options, stateFile: undefined }, objective);
    expect(r.trials.map((t) => [t.params, t.value])).toEqual(whole.trials.map((t) => [t.params, t.value]));
  });

  it('withParams sets dotted paths in a copy', () => {
    const base = { training: { lr: 1 }, lora: { r: 2 } };
    expect(withParams(base, { 'training.lr': 3, 'lora.alpha': 4 })).toEqual({ training: { lr: 3 }, lora: { r: 2, alpha: 4 } });
    expect(base.training.lr).toBe(1);
  });
});

describe('tunekit search', () => {
  it('searches a job on the tiny model and writes a best.json that trains', async () => {
    const model = join(work, 'model');
    tinyModelFolder(model);
    writeFileSync(join(work, 'data.jsonl'), Array.from({ length: 24 }, (_, i) => JSON.stringify({ prompt: `word ${i % 4}`, completion: ` the cat ${i % 4}` })).join('\n'));
    writeFileSync(join(work, 'job.json'), JSON.stringify({
      model: 'model', data: { path: 'data.jsonl', validation: 0.25 }, training: { epochs: 2, batchSize: 4, maxLength: 32 }, output: 'out',
      search: { strategy: 'grid', space: { lr: [1e-3, 1e-2], r: [2, 4] } },
    }));
    const cli = join(here, '../dist/lib/cli/main.js');
    const run = (...args: string[]) => promisify(execFile)(process.execPath, [cli, ...args], { cwd: work });
    const s = await run('search', 'job.json');
    expect(s.stdout).toMatch(/best: \{"training\.lr":[\d.e-]+,"lora\.r":\d\}/);
    const again = await run('search', 'job.json');
    expect(again.stdout).toMatch(/4 trials resumed/);
    const best = JSON.parse(readFileSync(join(work, 'out', 'best.json'), 'utf8'));
    expect([1e-3, 1e-2]).toContain(best.training.lr);
    best.output = join(work, 'retrained');
    writeFileSync(join(work, 'best-run.json'), JSON.stringify(best));
    await run('train', 'best-run.json');
    expect(existsSync(join(work, 'retrained', 'adapter', 'adapter_model.safetensors'))).toBe(true);
  }, 120_000);
});
