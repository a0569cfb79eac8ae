// Suite `gemm`: fp32 GFLOP/s of the three linear-layer products at M = 512 tokens on the
// projection shapes of SmolLM2-135M and Llama-3.2-1B, against
//   - the machine's own fp32 FMA peak on the same threads (measured here: the `limit` column), and
//   - OpenBLAS cblas_sgemm in the same run, when Debian's libopenblas-dev is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gemm, measureFmaPeak, runtimeInfo, Tensor } from '../../lib/index.js';
import { packageRoot } from '../../lib/native.js';
import { median, type Row } from '../table.js';

const M = 512;
// (in = K, out = N) of each distinct projection: q/o, k/v, gate/up, down.
const MODELS: [string, [number, number][]][] = [
  ['smollm2-135m', [[576, 576], [576, 192], [576, 1536], [1536, 576]]],
  ['llama-3.2-1b', [[2048, 2048], [2048, 512], [2048, 8192], [8192, 2048]]],
];
type Op = { name: string; m: number; n: number; k: number; ta: boolean; tb: boolean };
// Y = X·Wᵀ (M x out), dX = dY·W (M x in), dW = dYᵀ·X (out x in).
function ops(k: number, n: number): Op[] {
  return [
    { name: 'fwd X·Wt', m: M, n, k, ta: false, tb: true },
    { name: 'dX = dY·W', m: M, n: k, k: n, ta: false, tb: false },
    { name: 'dW = dYt·X', m: n, n: k, k: M, ta: true, tb: false },
  ];
}

/** Compiles the OpenBLAS peer if the library is installed; returns its path or null. */
function openblasPeer(): string | null {
  const root = packageRoot();
  const out = join(root, '.bench-cache', 'openblas_sgemm');
  if (existsSync(out)) return out;
  mkdirSync(join(root, '.bench-cache'), { recursive: true });
  const r = spawnSync('cc', ['-O2', join(root, 'bench/peers/openblas_sgemm.c'), '-o', out, '-lopenblas'], { encoding: 'utf8' });
  return r.status === 0 ? out : null;
}

export async function runGemm(options: { reps: number; quick: boolean }): Promise<{ rows: Row[]; notes: string[] }> {
  const info = runtimeInfo();
  const peak = await measureFmaPeak(1.0);
  const peer = openblasPeer();
  // OpenBLAS 0.3.21 does not know this CPU and would pick a slow SSE kernel; we name its AVX-512 one.
  const peerEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(info.threads), OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE_PEER ?? 'SkylakeX' };
  const notes = [
    `ours: tunekit ${info.isa} kernels, ${info.threads} threads; limit: measured fp32 FMA peak ${peak.toFixed(1)} GFLOP/s`,
    peer ? `peer: OpenBLAS cblas_sgemm, OPENBLAS_NUM_THREADS=${info.threads}, OPENBLAS_CORETYPE=${peerEnv.OPENBLAS_CORETYPE}` : 'peer: OpenBLAS not installed (apt-get install libopenblas-dev) — peer column empty',
    `each figure: median of ${options.reps} timed runs after a warm-up`,
  ];
  const rows: Row[] = [];
  for (const [model, shapes] of MODELS) {
    for (const [k, n] of options.quick ? shapes.slice(0, 1) : shapes) {
      for (const op of ops(k, n)) {
        const flops = 2 * op.m * op.n * op.k;
        const a = Tensor.zeros('f32', op.ta ? [op.k, op.m] : [op.m, op.k]);
        const b = Tensor.zeros('f32', op.tb ? [op.n, op.k] : [op.k, op.n]);
        a.data.fill(0.5);
        b.data.fill(0.25);
        const out = Tensor.zeros('f32', [op.m, op.n]);
        // Enough repeats per native call that the Promise round trip is noise (>= ~50 ms).
        const repeat = Math.max(1, Math.round(50e-3 / (flops / (peak * 1e9 * 0.7))));
        await gemm(a, b, { transposeA: op.ta, transposeB: op.tb, out });
        const times: number[] = [];
        for (let r = 0; r < options.reps; r++) {
          const t0 = process.hrtime.bigint();
          await gemm(a, b, { transposeA: op.ta, transposeB: op.tb, out, repeat });
          times.push(Number(process.hrtime.bigint() - t0) / 1e9 / repeat);
        }
        const ours = flops / median(times) / 1e9;
        let theirs: number | null = null;
        if (peer) {
          const s = execFileSync(peer, [op.m, op.n, op.k, +op.ta, +op.tb, Math.max(options.reps, repeat * 2)].map(String), { env: peerEnv, encoding: 'utf8' });
          theirs = flops / Number(s.trim()) / 1e9;
        }
        rows.push({
          suite: 'gemm',
          case: `${model} ${op.name} ${op.m}x${op.n}x${op.k}`,
          ours,
          peer: theirs,
          ratio: theirs ? ours / theirs : null,
          limit: peak,
          unit: 'GFLOP/s',
          note: `${((100 * ours) / peak).toFixed(0)}% of peak`,
        });
      }
    }
  }
  const medOurs = median(rows.map((r) => r.ours));
  const peers = rows.filter((r) => r.peer !== null).map((r) => r.peer!);
  const medPeer = peers.length ? median(peers) : null;
  rows.push({
    suite: 'gemm',
    case: 'median over shapes',
    ours: medOurs,
    peer: medPeer,
    ratio: medPeer ? medOurs / medPeer : null,
    limit: peak,
    unit: 'GFLOP/s',
    note: `${((100 * medOurs) / peak).toFixed(0)}% of peak (target >= 70%)${medPeer ? `, ${medOurs >= medPeer ? '>=' : '<'} OpenBLAS` : ''}`,
  });
  return { rows, notes };
}
