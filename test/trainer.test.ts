// The Trainer on the tiny Llama (test/reference/make_tiny_llama.py) with the tiny tokenizer:
// schedules equal transformers', token-weighted gradient accumulation equals one big batch, early
// stopping restores the best weights, NaN stops with the last checkpoint intact, an AbortSignal
// stops with a checkpoint, and a run killed with SIGKILL resumes to exactly the uninterrupted
// run's losses and weights.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyModelFolder } from './helpers.js';
import { afterAll, describe, expect, it } from 'vitest';
import { relErr } from './reference.js';
import { loadDataset, loadModel, openSafetensors, scheduleFactor, Trainer, TunekitError, writeSafetensors, type ScheduleName } from '../lib/index.js';
import { layoutStamp } from '../lib/train/checkpoint.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'tunekit-trainer-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const modelDir = join(work, 'model');
tinyModelFolder(modelDir);

const words = ['the', 'cat', 'sat', 'on', 'mat', 'dog', 'ran', 'hello', 'world', 'a'];
const rows = Array.from({ length: 40 }, (_, i) => ({ prompt: `${words[i % 10]} ${words[(i * 3) % 10]}`, completion: ` ${words[(i * 7) % 10]} ${words[(i + 1) % 10]} ${i}` }));
const dataFile = join(work, 'data.jsonl');
writeFileSync(dataFile, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

async function setup(loraSeed = 1) {
  const model = await loadModel(modelDir);
  model.addLora({ r: 4, alpha: 8, seed: loraSeed });
  const data = await loadDataset(dataFile, model.tokenizer!, { validation: 0.25, test: 0.1, seed: 4 });
  return { model, data };
}

describe('schedules', () => {
  it('equal transformers\' get_*_schedule_with_warmup and ULMFiT\'s slanted triangular rate', () => {
    const fx = JSON.parse(readFileSync(join(here, 'reference/fixtures/schedules.json'), 'utf8'));
    for (const name of ['constant', 'linear', 'cosine', 'slanted-triangular'] as ScheduleName[]) {
      const got = fx[name].map((_: number, s: number) => fx.lr * scheduleFactor({ name, totalSteps: fx.totalSteps, warmupSteps: fx.warmupSteps }, s));
      for (let s = 0; s < got.length; s++) expect(Math.abs(got[s] - fx[name][s]), `${name} step ${s}`).toBeLessThan(1e-15);
    }
  });
});

describe('Trainer', () => {
  it('refuses bad options with the option named', async () => {
    const { model } = await setup();
    expect(() => new Trainer(model, { gradAccumulation: 0 })).toThrow('Expected positive integer for gradAccumulation but received 0');
    expect(() => new Trainer(model, { lr: -1 })).toThrow('Expected positive number for lr but received -1');
    expect(() => new Trainer(model, { schedul: 'linear' } as never)).toThrow('Unknown option schedul for Trainer');
    expect(() => new Trainer(model, { checkpointEvery: 2 })).toThrow(/outputDir/);
    const frozen = await loadModel(modelDir);
    const d = await loadDataset(dataFile, frozen.tokenizer!);
    await expect(new Trainer(frozen).train(d)).rejects.toThrow(/addLora\(\) or model.enableFullTraining\(\)/);
  });

  it('accumulates micro-batches into the gradient of their mean over all tokens', async () => {
    const a = await setup(), b = await setup();
    // Adam's first step moves each weight by about lr·g/(|g| + eps): with the default eps a
    // gradient of 1e-9 (a sum that cancels) would turn rounding-level differences into visible
    // ones, so eps is raised to keep the parameter comparison about the gradient.
    const base = { maxSteps: 1, lr: 1e-2, schedule: 'constant' as const, maxGradNorm: 0, eps: 1e-6 };
    await new Trainer(a.model, { ...base, batchSize: 4, gradAccumulation: 1 }).train(a.data.train);
    await new Trainer(b.model, { ...base, batchSize: 1, gradAccumulation: 4 }).train(b.data.train);
    const pa = a.model.optimizerState(), pb = b.model.optimizerState();
    // After one AdamW step m = (1 - beta1)·gradient: the accumulated gradient, compared.
    expect(relErr(pb.m.data, pa.m.data)).toBeLessThan(1e-5);
    expect(relErr(pb.params.data, pa.params.data)).toBeLessThan(1e-4);
  });

  it('evaluates, reports events and logs, and learns', async () => {
    const { model, data } = await setup();
    const log = join(work, 'events.jsonl');
    const trainer = new Trainer(model, { epochs: 3, batchSize: 4, lr: 1e-2, evalEvery: 4, logFile: log, warmupRatio: 0.1 });
    const steps: number[] = [], evals: string[] = [];
    trainer.on('step', (e) => steps.push(e.step));
    trainer.on('eval', (e) => evals.push(`${e.step}:${e.split}`));
    const before = await trainer.evaluate(data.validation!);
    const r = await trainer.train(data, { evalSets: { general: data.test! } });
    expect(r.stopReason).toBe('completed');
    expect(steps).toEqual(Array.from({ length: 21 }, (_, i) => i + 1)); // 27 examples / 4 -> 7 steps x 3 epochs
    expect(evals.slice(0, 2)).toEqual(['4:validation', '4:general']);
    expect(r.test!.loss).toBeGreaterThan(0);
    expect(r.evalSets.general!.loss).toBe(r.test!.loss);
    const after = await trainer.evaluate(data.validation!);
    expect(after.loss).toBeLessThan(before.loss);
    expect(after.perplexity).toBeCloseTo(Math.exp(after.loss), 10);
    const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.type === 'step')).toHaveLength(21);
    expect(lines.at(-1)).toMatchObject({ type: 'test' });
  });

  it('stops early and restores the best weights', async () => {
    const { model, data } = await setup();
    const out = join(work, 'early');
    // minDelta larger than any change: only the first evaluation counts as an improvement.
    const trainer = new Trainer(model, { epochs: 10, batchSize: 4, lr: 1e-2, evalEvery: 2, earlyStopping: { patience: 2, minDelta: 100 }, outputDir: out });
    const r = await trainer.train(data);
    expect(r.stopReason).toBe('early-stopping');
    expect(r.best!.step).toBe(2);
    expect(r.steps).toBe(6);
    expect((await trainer.evaluate(data.validation!)).loss).toBe(r.best!.value);
    expect(existsSync(join(out, 'best', 'adapter', 'adapter_model.safetensors'))).toBe(false); // best keeps the optimizer state
    expect(existsSync(join(out, 'best', 'optimizer.safetensors'))).toBe(true);
    expect(existsSync(join(out, 'checkpoint-6', 'adapter', 'adapter_config.json'))).toBe(true);
  });

  it('stops on a NaN loss with a clear error and the last checkpoint intact', async () => {
    const { model, data } = await setup();
    const out = join(work, 'nan');
    const trainer = new Trainer(model, { epochs: 50, batchSize: 4, lr: 1e30, maxGradNorm: 0, schedule: 'constant', outputDir: out, checkpointEvery: 1 });
    let last = 0;
    trainer.on('step', (e) => (last = e.step));
    const err = await trainer.train(data).catch((e) => e);
    expect(err).toBeInstanceOf(TunekitError);
    expect(err.code).toBe('ERR_TUNEKIT_NUMERIC');
    expect(err.message).toMatch(new RegExp(`at step ${last + 1} .*the last checkpoint is intact`));
    const ckpt = join(out, `checkpoint-${last}`);
    const f = await openSafetensors(join(ckpt, 'optimizer.safetensors'));
    expect((await f.read('params')).data.every((x) => Number.isFinite(x))).toBe(true);
    await f.close();
  });

  it('stops on an AbortSignal with a checkpoint', async () => {
    const { model, data } = await setup();
    const out = join(work, 'abort');
    const controller = new AbortController();
    const trainer = new Trainer(model, { epochs: 5, batchSize: 2, gradAccumulation: 2, outputDir: out });
    trainer.on('step', (e) => e.step === 3 && controller.abort());
    const r = await trainer.train(data, { signal: controller.signal });
    expect(r.stopReason).toBe('aborted');
    expect(r.steps).toBe(3);
    expect(readdirSync(out)).toContain('checkpoint-3');
    expect(JSON.parse(readFileSync(join(out, 'checkpoint-3', 'trainer_state.json'), 'utf8'))).toMatchObject({ step: 3, epoch: 0, position: 12 });
  });
});

describe('resume with nothing to resume', () => {
  it('is refused with resume: true, and starts fresh with resume: \'auto\'', async () => {
    const { model, data } = await setup();
    const out = join(work, 'nothing');
    await expect(new Trainer(model, { maxSteps: 1, batchSize: 4, outputDir: out, resume: true }).train(data)).rejects.toThrow(/no checkpoint to resume from \(resume: true\)/);
    const resumed: number[] = [];
    const first = new Trainer(model, { maxSteps: 2, batchSize: 4, outputDir: out, resume: 'auto' });
    first.on('resume', (e) => resumed.push(e.step));
    expect((await first.train(data)).steps).toBe(2);
    const again = await setup();
    const second = new Trainer(again.model, { maxSteps: 3, batchSize: 4, outputDir: out, resume: 'auto' });
    second.on('resume', (e) => resumed.push(e.step));
    expect((await second.train(again.data)).steps).toBe(3);
    expect(resumed).toEqual([2]); // only the second run had a checkpoint to continue from
  });
});

describe('resuming into another layout', () => {
  it('is refused when the checkpoint\'s trainable tensors sit elsewhere in the flat vector', async () => {
    const { model, data } = await setup();
    const out = join(work, 'layout');
    await new Trainer(model, { maxSteps: 2, batchSize: 4, outputDir: out }).train(data);
    const dir = join(out, 'checkpoint-2'), file = join(dir, 'optimizer.safetensors');
    const f = await openSafetensors(file);
    expect(f.metadata.layout).toMatch(/^[0-9a-f]{32}$/);
    const saved = { params: await f.read('params'), m: await f.read('m'), v: await f.read('v') };
    const step = f.metadata.step!;
    await f.close();
    // The same checkpoint, stamped as another layout of the same size (as a full fine-tuning
    // checkpoint of an older version would be): the values would land in the wrong places.
    await writeSafetensors(file, saved, { metadata: { step, layout: '0'.repeat(32) } });
    const again = await setup();
    await expect(new Trainer(again.model, { maxSteps: 3, batchSize: 4, outputDir: out, resume: dir }).train(again.data)).rejects.toThrow(/laid out differently/);
    // With its own stamp it resumes.
    await writeSafetensors(file, saved, { metadata: { step, layout: layoutStamp(again.model) } });
    expect((await new Trainer(again.model, { maxSteps: 3, batchSize: 4, outputDir: out, resume: dir }).train(again.data)).steps).toBe(3);
  });
});

describe('a full disk', () => {
  const disk = join(work, 'small-disk');
  let mounted = false;
  try {
    mkdirSync(disk);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', disk], { stdio: 'ignore' });
    mounted = true;
  } catch {
    mounted = false;
  }
  afterAll(() => {
    if (mounted) execFileSync('umount', [disk]);
  });

  it.skipIf(!mounted)('stops training with a clear error and leaves the last checkpoint whole', async () => {
    const { model, data } = await setup();
    const trainer = new Trainer(model, { epochs: 20, batchSize: 4, outputDir: disk, checkpointEvery: 1, keepCheckpoints: 50 });
    const err = await trainer.train(data).catch((e) => e);
    expect(err).toBeInstanceOf(TunekitError);
    expect(err.code).toBe('ERR_TUNEKIT_IO');
    expect(err.message).toMatch(/no space left on device/);
    const names = readdirSync(disk);
    expect(names.some((n) => /tmp|old/.test(n))).toBe(false); // no half-written checkpoint left behind
    const last = Math.max(...names.map((n) => Number(/^checkpoint-(\d+)$/.exec(n)?.[1] ?? -1)));
    expect(last).toBeGreaterThan(0);
    const state = JSON.parse(readFileSync(join(disk, `checkpoint-${last}`, 'trainer_state.json'), 'utf8'));
    expect(state.step).toBe(last);
    const f = await openSafetensors(join(disk, `checkpoint-${last}`, 'optimizer.safetensors'));
    expect((await f.read('params')).shape[0]).toBe(model.optimizerState().params.shape[0]);
    await f.close();
  });
});

describe('resume after kill -9', () => {
  const child = join(here, 'helpers', 'train-child.mjs');
  const run = (out: string, steps: number, killAtStep?: number) =>
    new Promise<{ code: number | null; signal: string | null; stdout: string }>((resolve) => {
      const p = spawn(process.execPath, [child, modelDir, dataFile, out, String(steps)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      p.stdout.on('data', (d: Buffer) => {
        stdout += d;
        if (killAtStep !== undefined && stdout.includes(`step ${killAtStep}\n`)) p.kill('SIGKILL');
      });
      p.on('exit', (code, signal) => resolve({ code, signal, stdout }));
    });
  const losses = (out: string) => {
    const byStep = new Map<number, number>();
    for (const l of readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n')) {
      const r = JSON.parse(l);
      if (r.type === 'step') byStep.set(r.step, r.loss); // the last record of a step wins
    }
    return [...byStep.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
  };

  it('reproduces the uninterrupted run exactly', async () => {
    const steps = 12;
    const whole = join(work, 'whole'), killed = join(work, 'killed');
    expect((await run(whole, steps)).code).toBe(0);
    const first = await run(killed, steps, 4);
    expect(first.signal).toBe('SIGKILL');
    const second = await run(killed, steps, 9);
    expect(second.signal).toBe('SIGKILL');
    const third = await run(killed, steps);
    expect(third.code).toBe(0);
    expect(third.stdout).toMatch(/done 12 max-steps/);
    expect(losses(killed)).toEqual(losses(whole));
    // The steps redone after each resume are logged once: the records of the killed segments past
    // their checkpoints were dropped when the run resumed.
    const logged = readFileSync(join(killed, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.type === 'step').map((r) => r.step);
    expect(logged).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
    const params = async (dir: string) => {
      const f = await openSafetensors(join(dir, 'checkpoint-12', 'optimizer.safetensors'));
      const t = [...(await f.read('params')).data, ...(await f.read('m')).data, ...(await f.read('v')).data];
      await f.close();
      return t;
    };
    expect(await params(killed)).toEqual(await params(whole));
  }, 60_000);
});
