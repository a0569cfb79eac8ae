// Data-parallel training over Open MPI (lib/dist/, native/dist/): ranks started by mpirun, each
// training on its share of every global batch, must give the losses and parameters of one process
// with the same global batch; the sharded optimizer state must be total / N per rank; checkpoints
// must resume on another world size and stage; a mismatched job and a lost rank must stop the run
// with an error instead of a hang. Each run is a child process (test/dist/worker.mjs).
//
// Tolerances: a 2-rank step sums each rank's gradient (from its own backward over its rows) and
// then adds the two, where one process sums over all rows in one backward: the same terms in
// another order, so fp32 rounding differs (~1e-7 relative per sum). The stages are compared with
// each other bit for bit: they move the same sums by different collectives.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { detectLaunch } from '../lib/dist/launcher.js';
import { nativePath } from '../lib/native.js';
import { consolidateCheckpoint, readOptimizerState } from '../lib/train/checkpoint.js';
import { tinyModelFolder } from './helpers.js';

const worker = fileURLToPath(new URL('./dist/worker.mjs', import.meta.url));
const mpirun = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).status === 0;
const engine = existsSync(join(dirname(nativePath()), 'libtunekit_mpi.so'));
const reason = !mpirun ? 'mpirun is not installed (apt install openmpi-bin libopenmpi-dev)' : !engine ? 'tunekit was built without its MPI engine (no MPI at build time)' : '';
if (reason) console.warn(`distributed tests skipped: ${reason}`);

const work = mkdtempSync(join(tmpdir(), 'tunekit-dist-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const modelDir = tinyModelFolder(join(work, 'model'));
const words = ['the', 'cat', 'sat', 'on', 'mat', 'dog', 'ran', 'hello', 'world', 'a'];
const dataFile = join(work, 'data.jsonl');
writeFileSync(dataFile, Array.from({ length: 40 }, (_, i) => JSON.stringify({ prompt: `${words[i % 10]} ${words[(i * 3) % 10]}`, completion: ` ${words[(i * 7) % 10]} ${words[(i + 1) % 10]} ${i}` })).join('\n') + '\n');

interface Step { step: number; loss: number; gradNorm: number; tokens: number }
interface Outcome { out: string; status: number | null; output: string; seconds: number; steps: Step[]; stopReason?: string; error?: { code: string; message: string }; params: Float32Array; ranks: { rank: number; momentsValues: number; momentsLength: number; error?: { message: string } }[] }

let runs = 0;
/** Trains in `world` processes (1: plain node, no launcher) and reads what rank 0 wrote. */
function train(world: number, job: { method?: 'lora' | 'full'; trainer: Record<string, unknown>; rankTrainer?: Record<number, Record<string, unknown>>; killAt?: { rank: number; step: number }; validation?: number; probeGrads?: number[][] }): Outcome {
  const out = join(work, `run${runs++}`);
  const arg = JSON.stringify({ modelDir, dataFile, method: job.method ?? 'lora', ...job, out });
  const env = { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1', TUNEKIT_THREADS: '1' };
  const [cmd, args] = world === 1 ? [process.execPath, [worker, arg]] : ['mpirun', ['-np', String(world), '--oversubscribe', process.execPath, worker, arg]];
  const t0 = performance.now();
  const r = spawnSync(cmd, args as string[], { env, encoding: 'utf8', timeout: 120_000 });
  const seconds = (performance.now() - t0) / 1000;
  const output = `${r.stdout}\n${r.stderr}`;
  const summary = existsSync(`${out}.json`) ? JSON.parse(readFileSync(`${out}.json`, 'utf8')) : { steps: [] };
  const params = existsSync(`${out}.params`) ? new Float32Array(readFileSync(`${out}.params`).buffer.slice(0)) : new Float32Array();
  const ranks = Array.from({ length: world }, (_, q) => `${out}.rank${q}.json`).filter(existsSync).map((f) => JSON.parse(readFileSync(f, 'utf8')));
  return { out, status: r.status, output, seconds, params, ranks, ...summary };
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

function expectSameRun(got: Outcome, want: Outcome, paramTolerance: number) {
  expect(got.status, got.output).toBe(0);
  expect(got.steps.map((s) => s.tokens)).toEqual(want.steps.map((s) => s.tokens)); // the same examples in every global batch
  got.steps.forEach((s, i) => {
    expect(Math.abs(s.loss - want.steps[i]!.loss) / want.steps[i]!.loss, `loss at step ${s.step}`).toBeLessThan(1e-6);
    expect(Math.abs(s.gradNorm - want.steps[i]!.gradNorm) / want.steps[i]!.gradNorm, `gradient norm at step ${s.step}`).toBeLessThan(1e-5);
  });
  expect(got.params.length).toBe(want.params.length);
  expect(maxAbsDiff(got.params, want.params)).toBeLessThan(paramTolerance);
}

describe('launcher detection', () => {
  it('reads Open MPI, Hydra and srun environments, and nothing from a plain process', () => {
    expect(detectLaunch({ OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: '4' })).toEqual({ launcher: 'openmpi', rank: 1, world: 4, localRank: 1 });
    expect(detectLaunch({ PMI_RANK: '0', PMI_SIZE: '2' })).toEqual({ launcher: 'mpich', rank: 0, world: 2, localRank: 0 });
    expect(detectLaunch({ SLURM_PROCID: '3', SLURM_STEP_NUM_TASKS: '8' })).toEqual({ launcher: 'slurm', rank: 3, world: 8, localRank: 3 });
    // The rank on this machine, where the launcher says (which GPU plain device 'cuda' takes).
    expect(detectLaunch({ OMPI_COMM_WORLD_RANK: '5', OMPI_COMM_WORLD_SIZE: '8', OMPI_COMM_WORLD_LOCAL_RANK: '1' })).toMatchObject({ rank: 5, localRank: 1 });
    expect(detectLaunch({ SLURM_PROCID: '6', SLURM_STEP_NUM_TASKS: '8', SLURM_LOCALID: '2' })).toMatchObject({ rank: 6, localRank: 2 });
    expect(detectLaunch({ SLURM_PROCID: '0', SLURM_NTASKS: '8' })).toBeNull(); // an sbatch script, not a step srun started
    expect(detectLaunch({})).toBeNull();
    expect(detectLaunch({ OMPI_COMM_WORLD_RANK: '2', OMPI_COMM_WORLD_SIZE: '2' })).toBeNull();
  });

  it('a plain run never loads MPI', () => {
    const r = train(1, { trainer: { maxSteps: 1, batchSize: 4 } });
    expect(r.status, r.output).toBe(0);
    const probe = spawnSync(process.execPath, ['--input-type=module', '-e', `
      const { processGroup } = await import(${JSON.stringify(new URL('../dist/lib/dist/group.js', import.meta.url).href)});
      const g = processGroup();
      const maps = (await import('node:fs')).readFileSync('/proc/self/maps', 'utf8');
      console.log(JSON.stringify({ world: g.world, mpi: /libmpi|libtunekit_mpi/.test(maps) }));`], { encoding: 'utf8' });
    expect(JSON.parse(probe.stdout)).toEqual({ world: 1, mpi: false });
  });
});

describe.skipIf(!!reason)('data parallelism over MPI (2 ranks)', () => {
  const trainer = { maxSteps: 4, gradAccumulation: 2, maxGradNorm: 0.5, lr: 1e-2 };
  for (const method of ['lora', 'full'] as const) {
    it(`${method}: ZeRO stages 0, 1 and 2 equal one process with the same global batch (0 and 1 each other bit for bit)`, () => {
      const one = train(1, { method, trainer: { ...trainer, batchSize: 4 } });
      expect(one.status, one.output).toBe(0);
      const stages = [0, 1, 2].map((zero) => train(2, { method, trainer: { ...trainer, batchSize: 2, distributed: { zero } } }));
      // Adam divides by sqrt(v): tiny gradients' rounding moves a parameter by up to ~lr·1e-3.
      for (const s of stages) expectSameRun(s, one, method === 'lora' ? 1e-6 : 1e-4);
      // Stages 0 and 1 all-reduce the window's sums: the same bits. Stage 2 reduces each
      // micro-batch during its backward and sums the window at the owner ((a1 + b1) + (a2 + b2)
      // instead of (a1 + a2) + (b1 + b2)): within the tolerance above.
      expect(stages[1]!.steps).toEqual(stages[0]!.steps);
      expect(Buffer.from(stages[1]!.params.buffer).equals(Buffer.from(stages[0]!.params.buffer))).toBe(true);
      // Optimizer state per rank: whole at stage 0; at stages 1 and 2 a shard, total / 2 up to
      // the 4096-value chunks shards are cut in (the norm is summed over fixed chunks).
      const total = one.params.length;
      for (const r of stages[0]!.ranks) expect(r.momentsLength).toBe(total);
      for (const s of stages.slice(1)) {
        expect(s.ranks.map((r) => r.momentsLength).reduce((a, b) => a + b, 0)).toBe(total);
        for (const r of s.ranks) expect(Math.abs(r.momentsLength - total / 2)).toBeLessThanOrEqual(4096);
      }
    }, 240_000);
  }

  it('ZeRO-2: after a backward each rank holds its shard of the summed gradient and nothing else', () => {
    const ids = Array.from({ length: 4 }, (_, r) => Array.from({ length: 12 }, (_, i) => (r * 31 + i * 7) % 90 + 3));
    const full = train(1, { method: 'full', trainer: {}, probeGrads: ids });
    const two = train(2, { method: 'full', trainer: { distributed: { zero: 2 } }, probeGrads: ids });
    expect(two.status, two.output).toBe(0);
    const read = (o: Outcome, r: number) => new Float32Array(readFileSync(`${o.out}.grads${r}`).buffer.slice(0));
    const whole = read(full, 0);
    let owned = 0;
    for (const meta of two.ranks as unknown as { rank: number; momentsOffset: number; momentsLength: number }[]) {
      const g = read(two, meta.rank), lo = meta.momentsOffset, hi = lo + meta.momentsLength;
      owned += hi - lo;
      let worst = 0, scale = 0;
      g.forEach((v, i) => {
        if (i >= lo && i < hi) worst = Math.max(worst, Math.abs(v - whole[i]!)), scale = Math.max(scale, Math.abs(whole[i]!));
        else expect(v, `rank ${meta.rank} holds a gradient value at ${i}, outside its shard`).toBe(0);
      });
      expect(worst / scale).toBeLessThan(1e-5);
    }
    expect(owned).toBe(whole.length);
  }, 240_000);

  it('a sharded checkpoint resumes on 1 rank, and a 1-rank one on 2 ranks at stage 2, to the uninterrupted losses; consolidation makes it a single-process checkpoint', async () => {
    const base = { gradAccumulation: 2, lr: 1e-2, schedule: 'constant', checkpointEvery: 1, keepCheckpoints: 5 };
    const whole = train(1, { method: 'full', trainer: { ...base, checkpointEvery: undefined, maxSteps: 4, batchSize: 4 } });
    const a = join(work, 'ckpt-a');
    const first = train(2, { method: 'full', trainer: { ...base, maxSteps: 2, batchSize: 2, outputDir: a, distributed: { zero: 1 } } });
    expect(first.status, first.output).toBe(0);
    expect(readdirSync(join(a, 'checkpoint-2')).sort()).toEqual(['optimizer-shard-0.safetensors', 'optimizer-shard-1.safetensors', 'optimizer.safetensors', 'trainer_state.json']);
    const onOne = train(1, { method: 'full', trainer: { ...base, maxSteps: 4, batchSize: 4, outputDir: a, resume: true } });
    expectSameRun({ ...onOne, steps: onOne.steps }, { ...whole, steps: whole.steps.slice(2) }, 1e-4);

    const b = join(work, 'ckpt-b');
    expect(train(1, { method: 'full', trainer: { ...base, maxSteps: 2, batchSize: 4, outputDir: b } }).status).toBe(0);
    const onTwo = train(2, { method: 'full', trainer: { ...base, maxSteps: 4, batchSize: 2, outputDir: b, resume: true, distributed: { zero: 2 } } });
    expectSameRun(onTwo, { ...whole, steps: whole.steps.slice(2) }, 1e-4);

    // Consolidated: the same state, moments whole in one file.
    const sharded = await readOptimizerState(join(a, 'checkpoint-2'));
    const c = join(work, 'consolidated');
    expect(await consolidateCheckpoint(join(a, 'checkpoint-2'), c)).toEqual({ dir: c, shards: 2 });
    expect(readdirSync(c).sort()).toEqual(['optimizer.safetensors', 'trainer_state.json']);
    const single = await readOptimizerState(c);
    for (const k of ['params', 'm', 'v'] as const) expect(Buffer.from(single[k].data.buffer).equals(Buffer.from(sharded[k].data.buffer)), k).toBe(true);
    expect(single.step).toBe(2);
  }, 240_000);

  it('resumes a 2-rank checkpoint on 3 ranks (uneven shards, a rank with a short last batch)', () => {
    const base = { gradAccumulation: 1, lr: 1e-2, schedule: 'constant', checkpointEvery: 1, maxGradNorm: 1 };
    const whole = train(1, { trainer: { ...base, checkpointEvery: undefined, maxSteps: 7, batchSize: 6 } });
    const dir = join(work, 'ckpt-3');
    expect(train(2, { trainer: { ...base, maxSteps: 2, batchSize: 3, outputDir: dir, distributed: { zero: 1 } } }).status).toBe(0);
    const onThree = train(3, { trainer: { ...base, maxSteps: 7, batchSize: 2, outputDir: dir, resume: true, distributed: { zero: 2 } } });
    expectSameRun(onThree, { ...whole, steps: whole.steps.slice(2) }, 1e-5); // three partial sums per step: more reordering
  }, 240_000);

  it('evaluation and early stopping are decided over every rank\'s share', () => {
    const t = { epochs: 3, batchSize: 2, lr: 1e-2, evalEvery: 2, earlyStopping: { patience: 1, minDelta: 100 } };
    const one = train(1, { validation: 0.25, trainer: { ...t, batchSize: 4 } });
    const two = train(2, { validation: 0.25, trainer: t });
    expect(two.status, two.output).toBe(0);
    expect(two.stopReason).toBe('early-stopping');
    expect((two as unknown as { evals: { tokens: number }[] }).evals.map((e) => e.tokens)).toEqual((one as unknown as { evals: { tokens: number }[] }).evals.map((e) => e.tokens));
  }, 240_000);

  it('a rank started with other options stops every rank before the first step, naming the rank and what differs', () => {
    const r = train(2, { trainer: { maxSteps: 2, batchSize: 2 }, rankTrainer: { 1: { lr: 5e-3 } } });
    expect(r.status).not.toBe(0);
    expect(r.steps).toEqual([]);
    expect(r.error?.message).toMatch(/Expected every rank to train with the same options, .* but rank 1 \(options\) differ/);
  }, 240_000);

  it('mpirun -np 2 tunekit train: one progress, one log, sharded checkpoints, exports from rank 0; a held output folder refused on every rank; consolidate', () => {
    const cli = fileURLToPath(new URL('../dist/lib/cli/main.js', import.meta.url));
    const dir = join(work, 'cli');
    tinyModelFolder(join(dir, 'model'));
    writeFileSync(join(dir, 'data.jsonl'), Array.from({ length: 30 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `word ${i % 5}` }, { role: 'assistant', content: `the cat ${i % 5}` }] })).join('\n'));
    writeFileSync(join(dir, 'job.yaml'), 'model: model\ndata:\n  path: data.jsonl\n  validation: 0.2\ntraining:\n  maxSteps: 4\n  batchSize: 2\n  lr: 0.01\n  checkpointEvery: 2\n  distributed:\n    zero: 2\noutput: out\nexport:\n  gguf: true\n');
    const env = { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', TUNEKIT_THREADS: '1' };
    const mpi = (...args: string[]) => spawnSync('mpirun', ['-np', '2', '--oversubscribe', process.execPath, cli, ...args], { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });
    const t = mpi('train', 'job.yaml');
    expect(t.status, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/2 ranks \(openmpi, Open MPI v[\d.]+\), ZeRO stage 2; global batch 4 rows/);
    expect(t.stderr.match(/validation before training/g)).toHaveLength(1);
    expect(t.stderr.match(/done in/g)).toHaveLength(1);
    const records = readFileSync(join(dir, 'out/metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.filter((r) => r.type === 'step').map((r) => r.step)).toEqual([1, 2, 3, 4]);
    expect(readdirSync(join(dir, 'out/checkpoints/checkpoint-4')).sort()).toEqual(['adapter', 'optimizer-shard-0.safetensors', 'optimizer-shard-1.safetensors', 'optimizer.safetensors', 'trainer_state.json']);
    for (const f of ['adapter/adapter_model.safetensors', 'adapter.gguf', 'report.html']) expect(existsSync(join(dir, 'out', f)), f).toBe(true);
    const again = mpi('train', 'job.yaml');
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/rank 0: .*out holds a run \(checkpoints up to step 4/);
    expect(again.stderr).toMatch(/rank 0 failed to claim the output folder .*rank 1 stopped with it/);
    const c = spawnSync(process.execPath, [cli, 'consolidate', 'out/checkpoints/checkpoint-4', '--out', 'single'], { cwd: dir, encoding: 'utf8' });
    expect(c.stdout).toMatch(/the moments of 2 shards in one optimizer.safetensors/);
    expect(readdirSync(join(dir, 'single')).sort()).toEqual(['adapter', 'optimizer.safetensors', 'trainer_state.json']);
  }, 240_000);

  it('a rank killed with SIGKILL ends the run within 30 s, named; the last complete checkpoint resumes to the same losses', () => {
    const base = { maxSteps: 6, batchSize: 2, lr: 1e-2, checkpointEvery: 1, keepCheckpoints: 10 };
    const dir = join(work, 'ckpt-kill');
    const killed = train(2, { trainer: { ...base, outputDir: dir }, killAt: { rank: 1, step: 3 } });
    expect(killed.status).not.toBe(0);
    expect(killed.seconds).toBeLessThan(30);
    expect(killed.output).toMatch(/rank 1 .*signal 9/);
    const complete = readdirSync(dir).filter((n) => /^checkpoint-\d+$/.test(n)).sort();
    expect(complete.length).toBeGreaterThanOrEqual(2);
    const resumed = train(2, { trainer: { ...base, outputDir: dir, resume: true } });
    const whole = train(2, { trainer: { ...base, checkpointEvery: undefined } });
    const from = resumed.steps[0]!.step;
    expect(from).toBeLessThanOrEqual(4);
    expectSameRun(resumed, { ...whole, steps: whole.steps.slice(from - 1) }, 1e-6);
  }, 240_000);
});
