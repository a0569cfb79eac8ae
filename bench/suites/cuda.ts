// Suite `cuda` (on a machine with an NVIDIA GPU and a CUDA build): issue 13's figures.
// - A bf16 LoRA step (r = 16, all seven projections) and a QLoRA step (NF4 base) on a SmolLM2-135M
//   and a Llama-3.2-1B shape (random weights saved in bf16 by the peer script: nothing is
//   fetchable there), sequence 1024: tokens/s and peak GPU memory (tunekit's pool high-water mark;
//   torch.cuda.max_memory_allocated for the peer) beside transformers + PEFT (+ bitsandbytes for
//   QLoRA, when installed) with SDPA attention, on the same folder in the same run. Targets: ≥ 1.5x
//   the peer's tokens/s, ≤ its peak memory.
// - NF4 decoding (every element of a 4096 x 4096 matrix to fp32) in bytes moved per second, against
//   the measured device-to-device copy bandwidth (target ≥ 70 %).
// - The LoRA linear (r = 16 and 64, forward + backward) against the plain bf16 product of the same
//   frozen weight, forward + backward (target ≤ 1.10x the time).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { quantizeWeights, runtimeInfo, Tensor } from '../../lib/index.js';
import { native, packageRoot } from '../../lib/native.js';
import { peerPython } from '../peers.js';
import { randomValues } from '../random.js';
import type { Row } from '../table.js';

interface Shape {
  name: string;
  dim: number;
  layers: number;
  ffn: number;
  heads: number;
  kv_heads: number;
  vocab: number;
  tied: boolean;
  batch: number; // fills an H200 at sequence 1024 without activation checkpointing
}
const SHAPES: Shape[] = [
  { name: 'SmolLM2-135M', dim: 576, layers: 30, ffn: 1536, heads: 9, kv_heads: 3, vocab: 49152, tied: true, batch: 16 },
  { name: 'Llama-3.2-1B', dim: 2048, layers: 16, ffn: 8192, heads: 32, kv_heads: 8, vocab: 128256, tied: true, batch: 8 },
];
const SEQ = 1024, RANK = 16;

function peer(job: Record<string, unknown>): Record<string, number> | null {
  const python = peerPython() ?? 'python3';
  try {
    const out = execFileSync(python, [join(packageRoot(), 'bench/peers/cuda_peer.py'), JSON.stringify(job)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
  } catch (e) {
    console.error(`peer job ${String(job.op)} failed: ${String((e as { stderr?: string }).stderr ?? e).slice(-400)}`);
    return null;
  }
}

/** Median seconds of `repeat` runs of one op on the device (runOp's timing excludes the copies in and out). */
async function opSeconds(op: string, tensors: Tensor[], options: Record<string, number | boolean | string>, repeat: number): Promise<number> {
  const r = await native.runOp(op, tensors.map((t) => t.handle), { ...options, backend: 'cuda', repeat });
  return r[r.length - 1]!;
}

const gib = (b: number) => b / 2 ** 30;

export async function runCuda(options: { reps: number; quick: boolean }): Promise<{ rows: Row[]; notes: string[] }> {
  const info = runtimeInfo();
  if (!info.cuda || info.cuda.error) throw new Error(`the cuda suite needs a CUDA build and a GPU: ${info.cuda ? info.cuda.error : `this build is ${info.buildFlavour}`}`);
  const gpu = info.cuda.devices[0]!;
  const rows: Row[] = [], notes: string[] = [`${gpu.name}, CUDA runtime ${info.cuda.runtimeVersion}, driver ${info.cuda.driverVersion}`];
  const reps = Math.max(3, Math.min(options.reps, 9));
  const root = packageRoot();

  // NF4 decoding against the copy bandwidth.
  const n = 4096, copy = peer({ op: 'copy_bandwidth', bytes: 1 << 30, reps });
  const w = await quantizeWeights(Tensor.from('f32', [n, n], randomValues(n * n, 1)), { format: 'nf4' });
  const p = w.parts();
  const decode = await opSeconds('decode_weights', [p.data, p.absmax!, Tensor.zeros('f32', [n * n])], { format: 'nf4', rows: n, cols: n, blocksize: 64 }, reps);
  const moved = n * n * (0.5 + 4) + (n * n / 64) * 4;
  const bw = moved / decode / 1e9, limit = copy ? copy.bytes_per_second! / 1e9 : null;
  rows.push({ suite: 'cuda', case: `NF4 decode ${n}x${n} -> fp32`, ours: bw, peer: null, ratio: null, limit, unit: 'GB/s', note: limit ? `${((100 * bw) / limit).toFixed(0)}% of copy` : '' });

  // The LoRA linear against the plain product of the same frozen weight.
  for (const r of [16, 64]) {
    const m = 8192, d = 2048, t = (k: number, seed: number) => Tensor.from('f32', [k], randomValues(k, seed));
    const lora = { m, in: d, out: d, r, scale: 2, bf16: true };
    const fwd = await opSeconds('lora_linear_forward', [t(m * d, 1), t(d * d, 2), t(r * d, 3), t(d * r, 4), t(m * d, 5), t(m * r, 6)], lora, reps);
    const bwd = await opSeconds('lora_linear_backward', [t(m * d, 1), t(d * d, 2), t(r * d, 3), t(d * r, 4), t(m * d, 5), t(m * r, 6), t(m * d, 7), t(r * d, 8), t(d * r, 9)], lora, reps);
    const gemm = { m, n: d, k: d, transposeB: true, bf16: true };
    const plain = (await opSeconds('gemm', [t(m * d, 1), t(d * d, 2), t(m * d, 5)], gemm, reps)) + (await opSeconds('gemm', [t(m * d, 1), t(d * d, 2), t(m * d, 5)], { ...gemm, transposeB: false }, reps));
    rows.push({ suite: 'cuda', case: `LoRA linear r=${r} fwd+bwd ${m}x${d}x${d} bf16`, ours: (fwd + bwd) * 1e3, peer: plain * 1e3, ratio: plain / (fwd + bwd), limit: null, unit: 'ms', note: `${((fwd + bwd) / plain).toFixed(2)}x the plain GEMMs (target <= 1.10)` });
  }

  // Training steps.
  for (const shape of options.quick ? SHAPES.slice(0, 1) : SHAPES) {
    const dir = join(root, '.bench-cache', `cuda-${shape.name}`);
    if (!existsSync(join(dir, 'config.json')) && !peer({ op: 'make_model', dir, shape, seed: 1 })) throw new Error(`could not make the ${shape.name} folder`);
    const tokens = shape.batch * SEQ;
    for (const mode of ['lora', 'qlora'] as const) {
      const out = execFileSync(process.execPath, [join(root, 'bench/cuda-worker.mjs'), dir, String(shape.batch), String(SEQ), String(RANK), mode, String(reps), 'cuda'], { encoding: 'utf8' });
      const ours = JSON.parse(out.trim().split('\n').pop()!) as { seconds: number; peakBytes: number };
      const theirs = peer({ op: 'peft_step', dir, batch: shape.batch, seq: SEQ, r: RANK, qlora: mode === 'qlora', reps });
      const label = `${shape.name} ${mode === 'lora' ? 'LoRA' : 'QLoRA'} r=${RANK} bf16 ${shape.batch}x${SEQ}`;
      const ourRate = tokens / ours.seconds, peerRate = theirs ? tokens / theirs.seconds! : null;
      rows.push({ suite: 'cuda', case: `${label} tokens/s`, ours: ourRate, peer: peerRate, ratio: peerRate ? ourRate / peerRate : null, limit: null, unit: 'tok/s' });
      rows.push({ suite: 'cuda', case: `${label} peak memory`, ours: gib(ours.peakBytes), peer: theirs ? gib(theirs.peak_bytes!) : null, ratio: theirs ? theirs.peak_bytes! / ours.peakBytes : null, limit: gib(gpu.memoryBytes), unit: 'GiB', note: 'ratio: peer / ours' });
    }
  }
  return { rows, notes };
}
