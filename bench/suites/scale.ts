// Suite `scale`: how the LoRA step's cost grows with the model and the sequence. The bf16 LoRA
// r = 16 step (all seven projections, batch 1) and the QLoRA step (projections re-quantized to
// NF4) at the SmolLM2-135M, SmolLM2-360M and Llama-3.2-1B shapes (seeded random bf16 weights in
// Hugging Face folders under .bench-cache/: the speed does not depend on the values, and no hub is
// reachable), at sequence lengths 256, 1024 and 4096, beside transformers + PEFT (bf16 autocast)
// on the same folders in the same run; each configuration in its own process, so its peak RSS is
// its own. Reported: tokens/s, the share of the matmul ceiling (the step suite's limit: frozen
// products, adapters and attention FLOPs at the measured bf16 peak), and peak RSS; plus, per
// shape, the share's spread from the shortest to the longest sequence and the RSS growth per
// token. `--quick`: the 135M shape at 256 and 1024 only. TUNEKIT_SCALE picks shapes and lengths,
// e.g. TUNEKIT_SCALE='SmolLM2-360M:256,1024;Llama-3.2-1B:256' (the full grid takes hours on a
// small machine), and TUNEKIT_SCALE_MODES the steps, e.g. 'bf16,qlora' (default: all three).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runtimeInfo, Tensor, writeSafetensors } from '../../lib/index.js';
import { bf16Ceiling } from '../ceiling.js';
import { packageRoot } from '../../lib/native.js';
import { peerPython, peerVersion } from '../peers.js';
import type { Row } from '../table.js';
import { stepFlops, type Shape } from './step.js';

interface Model extends Shape {
  name: string;
  ffn: number;
  kvHeads: number;
  tied: boolean;
}

const llama = (name: string, layers: number, dim: number, ffn: number, heads: number, kvHeads: number, vocab: number, tied: boolean): Model => {
  const hd = dim / heads, kv = kvHeads * hd;
  return {
    name, layers, dim, ffn, heads, kvHeads, headDim: hd, vocab, tied,
    projections: [[dim, dim], [dim, kv], [dim, kv], [dim, dim], [dim, ffn], [dim, ffn], [ffn, dim]],
  };
};
const MODELS = [
  llama('SmolLM2-135M', 30, 576, 1536, 9, 3, 49152, true),
  llama('SmolLM2-360M', 32, 960, 2560, 15, 5, 49152, true),
  llama('Llama-3.2-1B', 16, 2048, 8192, 32, 8, 128256, true),
];

/** A LlamaForCausalLM folder of the shape with seeded random bf16 weights (N(0, 0.02)-like, norms 1), made once. */
async function folder(root: string, m: Model): Promise<string> {
  const dir = join(root, '.bench-cache', `${m.name.toLowerCase()}-random`);
  if (existsSync(join(dir, 'model.safetensors'))) return dir;
  mkdirSync(dir, { recursive: true });
  let seed = 7;
  // Uniform in ±0.035 (σ ≈ 0.02) as bf16 bit patterns: cheap at a billion values.
  const random = (shape: number[]) => {
    const t = Tensor.zeros('bf16', shape), d = t.data as Uint16Array, f = new Float32Array(1), u = new Uint32Array(f.buffer);
    for (let i = 0; i < d.length; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      f[0] = (seed / 4294967296 - 0.5) * 0.07;
      d[i] = u[0]! >>> 16;
    }
    return t;
  };
  const ones = (n: number) => Tensor.from('f32', [n], new Float32Array(n).fill(1));
  const w: Record<string, Tensor> = { 'model.embed_tokens.weight': random([m.vocab, m.dim]), 'model.norm.weight': ones(m.dim) };
  const names = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
  for (let i = 0; i < m.layers; i++) {
    const p = `model.layers.${i}.`;
    w[`${p}input_layernorm.weight`] = ones(m.dim);
    w[`${p}post_attention_layernorm.weight`] = ones(m.dim);
    m.projections.forEach(([inp, out], k) => (w[`${p}${k < 4 ? 'self_attn' : 'mlp'}.${names[k]}.weight`] = random([out, inp])));
  }
  await writeSafetensors(join(dir, 'model.safetensors'), w, { metadata: { format: 'pt' } });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: m.dim, intermediate_size: m.ffn, num_hidden_layers: m.layers,
    num_attention_heads: m.heads, num_key_value_heads: m.kvHeads, head_dim: m.headDim, vocab_size: m.vocab, rms_norm_eps: 1e-5,
    rope_theta: 500000, tie_word_embeddings: m.tied, max_position_embeddings: 8192, hidden_act: 'silu', attention_bias: false,
    torch_dtype: 'bfloat16',
  }, null, 2));
  return dir;
}

/** TUNEKIT_SCALE's 'Model:seq,seq;Model:seq' as the grid to run. */
function pickedGrid(spec: string): { m: Model; seqs: number[] }[] {
  return spec.split(';').map((part) => {
    const [name, list] = part.split(':');
    const m = MODELS.find((x) => x.name === name?.trim());
    const seqs = (list ?? '').split(',').map(Number);
    if (!m || !seqs.length || !seqs.every((s) => Number.isInteger(s) && s > 0)) {
      throw new Error(`TUNEKIT_SCALE: expected "Model:seq,seq;..." with models among ${MODELS.map((x) => x.name).join(', ')} but found "${part}"`);
    }
    return { m, seqs };
  });
}

export async function runScale(options: { reps: number; quick: boolean }): Promise<{ rows: Row[]; notes: string[] }> {
  const root = packageRoot();
  const info = runtimeInfo();
  const r = 16, reps = Math.max(1, Math.min(options.reps, 3));
  const ceiling = await bf16Ceiling(info), peak = ceiling.gflops;
  const grid = process.env.TUNEKIT_SCALE ? pickedGrid(process.env.TUNEKIT_SCALE)
    : (options.quick ? MODELS.slice(0, 1) : MODELS).map((m) => ({ m, seqs: options.quick ? [256, 1024] : [256, 1024, 4096] }));
  const all = ['bf16', 'qlora', 'bf16 checkpointed'] as const;
  const modes = process.env.TUNEKIT_SCALE_MODES ? all.filter((x) => process.env.TUNEKIT_SCALE_MODES!.split(',').map((y) => y.trim()).includes(x)) : all;
  if (!modes.length) throw new Error(`TUNEKIT_SCALE_MODES: expected some of ${all.join(', ')} but found "${process.env.TUNEKIT_SCALE_MODES}"`);
  const rows: Row[] = [];
  const notes: string[] = [];
  const shares: { name: string; share: number }[] = [];
  for (const { m, seqs } of grid) {
    const dir = await folder(root, m);
    const byMode: Record<string, { seq: number; share: number; rss: number }[]> = {};
    for (const seq of seqs) {
      for (const mode of modes) {
        const worker = [join(root, 'bench/step-worker.mjs'), dir, '1', String(seq), String(r), mode === 'qlora' ? 'qlora' : 'bf16', String(reps)];
        if (mode === 'bf16 checkpointed') worker.push('checkpoint');
        const ours = JSON.parse(execFileSync(process.execPath, worker, { encoding: 'utf8' }).trim().split('\n').pop()!) as { seconds: number; peakRss: number };
        let peer: { seconds: number; peak_rss: number } | null = null, peerFailed = '';
        if (peerPython() && mode === 'bf16') {
          const job = { op: 'peft_step', model_dir: dir, batch: 1, seq, r, dtype: 'bf16', reps, threads: info.threads, vocab: 49152 };
          try {
            const text = execFileSync(peerPython()!, [join(root, 'bench/peers/torch_peer.py'), JSON.stringify(job)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
            peer = JSON.parse(text.trim().split('\n').pop()!);
          } catch (e) {
            // A peer that cannot run the shape here (killed: out of memory, most often) is a result too.
            const { signal, status } = e as { signal?: string | null; status?: number | null };
            peerFailed = `; peer failed (${signal ? `killed by ${signal}, out of memory?` : `exit ${status}`})`;
          }
        }
        const limit = (seq * peak * 1e9) / stepFlops(m, 1, seq, r), tokensPerSecond = seq / ours.seconds;
        (byMode[mode] ??= []).push({ seq, share: tokensPerSecond / limit, rss: ours.peakRss });
        rows.push({
          suite: 'scale', case: `${m.name} ${mode} LoRA r=${r}, 1x${seq}`, ours: tokensPerSecond, peer: peer ? seq / peer.seconds : null,
          ratio: peer ? peer.seconds / ours.seconds : null, limit, unit: 'tokens/s',
          note: `${(100 * tokensPerSecond / limit).toFixed(0)}% of the ceiling; peak RSS ours ${(ours.peakRss / 2 ** 30).toFixed(2)} GiB${peer ? `, peer ${(peer.peak_rss / 2 ** 30).toFixed(2)} GiB` : ''}${peerFailed}`,
        });
      }
    }
    for (const [mode, list] of Object.entries(byMode)) {
      const first = list[0]!, last = list.at(-1)!;
      shares.push(...list.map((x) => ({ name: `${m.name} ${mode} 1x${x.seq}`, share: x.share })));
      if (list.length < 2) continue; // one length: no growth to report
      notes.push(`${m.name} ${mode}: share of the ceiling ${(100 * first.share).toFixed(0)}% at ${first.seq} -> ${(100 * last.share).toFixed(0)}% at ${last.seq}; ` +
        `RSS grows ${((last.rss - first.rss) / (last.seq - first.seq) / 2 ** 10).toFixed(0)} KiB per token`);
    }
  }
  if (shares.length > 1) {
    // The goal: a step runs at the same share of its ceiling whatever the model and length.
    const lo = shares.reduce((a, b) => (b.share < a.share ? b : a)), hi = shares.reduce((a, b) => (b.share > a.share ? b : a));
    notes.push(`share of the ceiling across shapes: ${(100 * lo.share).toFixed(0)}% (${lo.name}) to ${(100 * hi.share).toFixed(0)}% (${hi.name})`);
  }
  notes.push(
    `ours: tunekit ${info.isa}, ${info.threads} threads, bf16 step (${ceiling.keepsPanels ? 'weights kept as bf16 GEMM panels' : 'weights decoded in every product'}; QLoRA: NF4 decoded in every product), median of ${reps} steps after a warm-up`,
    peerVersion() ? `peer: transformers + PEFT (${peerVersion()}), the same folder, bf16 autocast, ${info.threads} threads` : 'peer: run bench/peers/setup.sh',
    `limit: tokens/s if the step's matrix products (causal attention's seq·(seq + 1)/2 scores included) ran at the measured bf16 peak (best of three runs: ${peak.toFixed(0)} GFLOP/s, ${ceiling.unit})`,
  );
  return { rows, notes };
}
