// Suite `gemm`: GFLOP/s of the three linear-layer products at M = 512 tokens on the projection
// shapes of SmolLM2-135M and Llama-3.2-1B, in fp32 and bf16, against
//   - the machine's own ceiling on the same threads, measured here (`limit`): the fp32 FMA peak,
//     and for bf16 the AMX tile peak (TDPBF16PS) where the kernels use AMX, else the vdpbf16ps peak;
//   - peers in the same run: OpenBLAS cblas_sgemm for fp32 (when libopenblas-dev is installed),
//     PyTorch torch.matmul for bf16 (when bench/peers/setup.sh has made its environment).
// And the forward product with GGUF K-quant weights (Q4_K, Q6_K: the bulk of a Q4_K_M file),
// decoded inside the packing step, against the same product with bf16 weights (ours; in the peer
// column): issue 17's target is within 1.3x of its time, a ratio >= 0.77.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gemm, measureLimit, quantizeWeights, runtimeInfo, Tensor, type Weights } from '../../lib/index.js';
import { bf16Ceiling } from '../ceiling.js';
import { packageRoot } from '../../lib/native.js';
import { peerSeconds, peerVersion } from '../peers.js';
import { median, type Row } from '../table.js';
import { randomKQuant } from '../kquant-blocks.js';
import { medianSeconds, MODELS, TOKENS } from '../timing.js';

type Op = { name: string; m: number; n: number; k: number; ta: boolean; tb: boolean };
// Y = X·Wᵀ (M x out), dX = dY·W (M x in), dW = dYᵀ·X (out x in).
function ops(k: number, n: number): Op[] {
  return [
    { name: 'fwd X·Wt', m: TOKENS, n, k, ta: false, tb: true },
    { name: 'dX = dY·W', m: TOKENS, n: k, k: n, ta: false, tb: false },
    { name: 'dW = dYt·X', m: n, n: k, k: TOKENS, ta: true, tb: false },
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

function summary(rows: Row[], label: string, limit: number, target: string): Row {
  const ours = median(rows.map((r) => r.ours));
  const peers = rows.filter((r) => r.peer !== null).map((r) => r.peer!);
  const peer = peers.length ? median(peers) : null;
  return {
    suite: 'gemm', case: `${label} median over shapes`, ours, peer, ratio: peer ? ours / peer : null, limit, unit: 'GFLOP/s',
    note: `${((100 * ours) / limit).toFixed(0)}% of limit (${target})`,
  };
}

export async function runGemm(options: { reps: number; quick: boolean; mode?: string }): Promise<{ rows: Row[]; notes: string[] }> {
  const info = runtimeInfo();
  const fp32Peak = await measureLimit('fp32', 1.0);
  const ceiling = await bf16Ceiling(info), bf16Peak = ceiling.gflops, amx = info.isa === 'amx';
  const blas = openblasPeer();
  // OpenBLAS 0.3.21 does not know this CPU and would pick a slow SSE kernel; we name its AVX-512 one.
  const blasEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(info.threads), OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE_PEER ?? 'SkylakeX' };
  const torch = peerVersion();
  const notes = [
    `ours: tunekit ${info.isa} kernels, ${info.threads} threads`,
    `limit: measured fp32 FMA peak ${fp32Peak.toFixed(1)} GFLOP/s, bf16 (${ceiling.unit}) peak ${bf16Peak.toFixed(1)} GFLOP/s`,
    blas ? `fp32 peer: OpenBLAS cblas_sgemm, OPENBLAS_NUM_THREADS=${info.threads}, OPENBLAS_CORETYPE=${blasEnv.OPENBLAS_CORETYPE}` : 'fp32 peer: OpenBLAS not installed (apt-get install libopenblas-dev)',
    torch ? `bf16 peer: torch.matmul in bf16 (${torch}), ${info.threads} threads` : 'bf16 peer: run bench/peers/setup.sh for PyTorch',
    `each figure: median of ${options.reps} timed runs after a warm-up`,
  ];
  const byMode: Record<'fp32' | 'bf16', Row[]> = { fp32: [], bf16: [] };
  for (const [model, shapes] of MODELS) {
    for (const [k, n] of options.quick ? shapes.slice(0, 1) : shapes) {
      for (const op of ops(k, n)) {
        const flops = 2 * op.m * op.n * op.k;
        const a = Tensor.zeros('f32', op.ta ? [op.k, op.m] : [op.m, op.k]);
        const b = Tensor.zeros('f32', op.tb ? [op.n, op.k] : [op.k, op.n]);
        a.data.fill(0.5);
        b.data.fill(0.25);
        const out = Tensor.zeros('f32', [op.m, op.n]);
        for (const mode of (['fp32', 'bf16'] as const).filter((m) => !options.mode || options.mode === m)) {
          const peak = mode === 'fp32' ? fp32Peak : bf16Peak;
          const seconds = await medianSeconds(
            (repeat) => gemm(a, b, { transposeA: op.ta, transposeB: op.tb, out, repeat, bf16: mode === 'bf16' }),
            options.reps,
            flops / (peak * 1e9 * 0.7),
          );
          let peer: number | null = null;
          if (mode === 'fp32' && blas) {
            const s = execFileSync(blas, [op.m, op.n, op.k, +op.ta, +op.tb, Math.max(options.reps, 9)].map(String), { env: blasEnv, encoding: 'utf8' });
            peer = flops / Number(s.trim()) / 1e9;
          }
          if (mode === 'bf16') {
            const s = peerSeconds({ op: 'matmul', dtype: 'bf16', m: op.m, n: op.n, k: op.k, ta: op.ta, tb: op.tb, reps: options.reps, threads: info.threads });
            peer = s ? flops / s / 1e9 : null;
          }
          const ours = flops / seconds / 1e9;
          byMode[mode].push({
            suite: 'gemm', case: `${mode} ${model} ${op.name} ${op.m}x${op.n}x${op.k}`, ours, peer, ratio: peer ? ours / peer : null,
            limit: peak, unit: 'GFLOP/s', note: `${((100 * ours) / peak).toFixed(0)}% of limit`,
          });
        }
      }
    }
  }
  const kquant: Row[] = [];
  for (const [model, shapes] of MODELS) {
    // K-quant rows hold 256-element super-blocks: shapes whose input width is not a multiple of
    // 256 (SmolLM2's 576) never have them (llama.cpp falls back to Q5_0 / Q8_0 there).
    const superBlocks = shapes.filter(([k]) => k % 256 === 0);
    for (const [k, n] of options.quick ? superBlocks.slice(0, 1) : superBlocks) {
      const flops = 2 * TOKENS * n * k;
      const a = Tensor.from('f32', [TOKENS, k], new Float32Array(TOKENS * k).fill(0.5));
      const out = Tensor.zeros('f32', [TOKENS, n]);
      const bf16Weights = await quantizeWeights(Tensor.from('f32', [n, k], new Float32Array(n * k).fill(0.01)), { format: 'bf16' });
      for (const mode of (['fp32', 'bf16'] as const).filter((m) => !options.mode || options.mode === m)) {
        const peak = mode === 'fp32' ? fp32Peak : bf16Peak;
        const time = (w: Weights) => medianSeconds((repeat) => gemm(a, w, { transposeB: true, out, repeat, bf16: mode === 'bf16' }), options.reps, flops / (peak * 1e9 * 0.5));
        const reference = flops / (await time(bf16Weights)) / 1e9;
        for (const format of ['q4_k', 'q6_k'] as const) {
          const ours = flops / (await time(randomKQuant(format, n, k, 1))) / 1e9;
          kquant.push({
            suite: 'gemm', case: `${mode} ${model} ${format.toUpperCase()} weights fwd X·Wt ${TOKENS}x${n}x${k}`, ours, peer: reference, ratio: ours / reference,
            limit: peak, unit: 'GFLOP/s', note: 'peer: the bf16-weight product (target ratio >= 0.77)',
          });
        }
      }
    }
  }
  notes.push('K-quant rows: random valid blocks (the values do not change the speed); peer column = our product with bf16 weights');
  const rows = [
    ...kquant,
    ...(byMode.fp32.length ? [...byMode.fp32, summary(byMode.fp32, 'fp32', fp32Peak, 'target >= 70%, >= OpenBLAS')] : []),
    ...(byMode.bf16.length ? [...byMode.bf16, summary(byMode.bf16, 'bf16', bf16Peak, amx ? 'target >= 30% of the AMX peak, >= 1.3x PyTorch' : 'target >= 1.3x PyTorch')] : []),
  ];
  return { rows, notes };
}
