// Suite `nf4`: the fused NF4 GEMM (Y = X·deq(W)ᵀ, W decoded panel by panel in the packing step,
// bf16 products) against our bf16 GEMM on the same shape — the target is within 1.3x of its time —
// and against bitsandbytes' CPU matmul_4bit in the same run; then NF4 dequantization throughput
// against the machine's memory bandwidth, measured here, and against bitsandbytes' dequantize_4bit.
import { gemm, measureLimit, quantizeWeights, runtimeInfo, Tensor } from '../../lib/index.js';
import { peerSeconds, peerVersion } from '../peers.js';
import { median, type Row } from '../table.js';
import { medianSeconds, MODELS, TOKENS } from '../timing.js';

export async function runNf4(options: { reps: number; quick: boolean }): Promise<{ rows: Row[]; notes: string[] }> {
  const info = runtimeInfo();
  const bandwidth = await measureLimit('memory', 2.0);
  const torch = peerVersion();
  const rows: Row[] = [];
  const slowdowns: number[] = [];
  const dequantRows: Row[] = [];
  for (const [model, shapes] of MODELS) {
    for (const [k, n] of options.quick ? shapes.slice(0, 1) : shapes) {
      const m = TOKENS;
      const x = Tensor.zeros('f32', [m, k]);
      for (let i = 0; i < x.numel; i++) x.data[i] = Math.sin(i * 0.37);
      const wf = Tensor.zeros('f32', [n, k]);
      for (let i = 0; i < wf.numel; i++) wf.data[i] = 0.02 * Math.cos(i * 0.11);
      const nf4 = await quantizeWeights(wf, { format: 'nf4', blocksize: 64 });
      const bf16 = await quantizeWeights(wf, { format: 'bf16' });
      const out = Tensor.zeros('f32', [m, n]);
      const flops = 2 * m * n * k;
      const estimate = flops / 5e11;
      const tNf4 = await medianSeconds((repeat) => gemm(x, nf4, { transposeB: true, bf16: true, out, repeat }), options.reps, estimate);
      const tBf16 = await medianSeconds((repeat) => gemm(x, bf16, { transposeB: true, bf16: true, out, repeat }), options.reps, estimate);
      slowdowns.push(tNf4 / tBf16);
      const peer = peerSeconds({ op: 'nf4_matmul', dtype: 'bf16', m, n, k, blocksize: 64, reps: options.reps, threads: info.threads });
      rows.push({
        suite: 'nf4', case: `${model} NF4 X·deq(W)t ${m}x${n}x${k}`, ours: flops / tNf4 / 1e9, peer: peer ? flops / peer / 1e9 : null,
        ratio: peer ? peer / tNf4 : null, limit: null, unit: 'GFLOP/s',
        note: `ours bf16-weight GEMM ${(flops / tBf16 / 1e9).toFixed(0)} GFLOP/s: NF4 takes ${(tNf4 / tBf16).toFixed(2)}x its time`,
      });
      // Dequantization to fp32: reads n*k/2 code bytes + absmax, writes n*k floats.
      const bytes = (n * k) / 2 + (n * k / 64) * 4 + n * k * 4;
      const target = Tensor.zeros('f32', [n, k]);
      const tDeq = await medianSeconds(async (repeat) => {
        for (let r = 0; r < repeat; r++) await nf4.dequantize(target);
      }, options.reps, bytes / 2e10);
      const peerDeq = peerSeconds({ op: 'nf4_dequant', n, k, blocksize: 64, reps: options.reps, threads: info.threads });
      dequantRows.push({
        suite: 'nf4', case: `${model} dequantize ${n}x${k} -> fp32`, ours: bytes / tDeq / 1e9, peer: peerDeq ? bytes / peerDeq / 1e9 : null,
        ratio: peerDeq ? peerDeq / tDeq : null, limit: bandwidth, unit: 'GB/s',
        note: `${((100 * bytes) / tDeq / 1e9 / bandwidth).toFixed(0)}% of measured bandwidth`,
      });
    }
  }
  const med = median(slowdowns);
  rows.push({
    suite: 'nf4', case: 'median NF4 time / bf16 GEMM time', ours: med, peer: null, ratio: null, limit: 1.3, unit: 'x',
    note: med <= 1.3 ? 'meets target <= 1.3x' : 'misses target <= 1.3x',
  });
  return {
    rows: [...rows, ...dequantRows],
    notes: [
      `ours: tunekit ${info.isa}, ${info.threads} threads, NF4 blocksize 64, bf16 products with fp32 accumulation`,
      torch ? `peer: bitsandbytes matmul_4bit / dequantize_4bit on the CPU backend (${torch}), bf16 activations` : 'peer: run bench/peers/setup.sh for bitsandbytes',
      `limit (dequantize rows): measured read bandwidth ${bandwidth.toFixed(1)} GB/s; throughput counts bytes read + written`,
      'GFLOP/s ratio = peer time / our time (higher is better for us)',
    ],
  };
}
