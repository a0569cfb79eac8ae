// Gradient-based parameter importance (first-order Taylor): the loss change from removing a
// weight is about |∂L/∂w · w|, so a tensor's importance is Σ|g ⊙ w| over its elements, averaged
// over N batches (gradients of the mean loss of each batch). Ranked per tensor, per module type
// (q_proj ... down_proj) and per layer; the module ranking suggests LoRA targets. The model is put
// in full fine-tuning mode to get every weight's gradient, so rank on a model loaded for the
// purpose (memory: four fp32 copies of the weights).
import { batches } from '../data/batches.js';
import type { DataSplit } from '../data/dataset.js';
import { TunekitError } from '../errors.js';
import type { Model } from '../model/load.js';

const MODULES: Record<string, string> = {
  attn_q: 'q_proj', attn_k: 'k_proj', attn_v: 'v_proj', attn_output: 'o_proj', ffn_gate: 'gate_proj', ffn_up: 'up_proj', ffn_down: 'down_proj',
};
// Phi-3: the blocks rank as the fused modules LoRA adapts.
const FUSED_MODULES: Record<string, string> = { ...MODULES, attn_q: 'qkv_proj', attn_k: 'qkv_proj', attn_v: 'qkv_proj', ffn_gate: 'gate_up_proj', ffn_up: 'gate_up_proj' };
export type LoraTarget = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj' | 'qkv_proj' | 'gate_up_proj';

export interface ImportanceRow {
  name: string;
  score: number;
  /** Score per element, comparable across tensors of different sizes. */
  perElement: number;
}

export interface ImportanceRanking {
  tensors: (ImportanceRow & { layer: number | null; module: string })[];
  modules: ImportanceRow[];
  layers: ImportanceRow[];
  /** The `count` module types with the highest mean importance per element. */
  suggestedTargets: LoraTarget[];
  batches: number;
}

function rank(rows: Map<string, { score: number; n: number }>): ImportanceRow[] {
  return [...rows.entries()].map(([name, { score, n }]) => ({ name, score, perElement: score / n })).sort((a, b) => b.score - a.score);
}

/** Ranks the model's weights by |gradient × weight| over `batches` batches of the split. */
export async function rankParameterImportance(
  model: Model,
  split: DataSplit,
  o: { batches?: number; batchSize?: number; maxLength?: number; targets?: number } = {},
): Promise<ImportanceRanking> {
  if (model.trainable !== 'full') model.enableFullTraining();
  const want = o.batches ?? 8;
  const sums = new Map<string, Float64Array>();
  let seen = 0;
  const params = model.fullTensors('params');
  for await (const b of batches(split.examples(0), { batchSize: o.batchSize ?? 4, maxLength: o.maxLength ?? 512, padId: model.tokenizer?.eosTokenId ?? 0 })) {
    if (seen === want) break;
    const { tokens } = await model.trainStep(b);
    if (tokens === 0) continue;
    const grads = model.fullTensors('grads'); // sums over the batch's labelled tokens
    for (const [name, g] of Object.entries(grads)) {
      const w = params[name]!.data;
      let s = 0;
      for (let i = 0; i < g.data.length; i++) s += Math.abs(g.data[i]! * w[i]!);
      s /= tokens; // the mean loss's gradient
      const acc = sums.get(name) ?? new Float64Array(1);
      acc[0]! += s;
      sums.set(name, acc);
    }
    const state = model.optimizerState();
    model.setOptimizerState({ params: state.params, m: state.m, v: state.v, step: state.step }); // zero the gradients
    seen++;
  }
  if (seen === 0) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected at least one batch to rank importance on');
  const modulesOf = model.config.fusedProjections ? FUSED_MODULES : MODULES;
  const tensors = [...sums.entries()].map(([name, acc]) => {
    const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(name);
    const n = params[name]!.data.length, score = acc[0]! / seen;
    return { name, score, perElement: score / n, layer: m ? Number(m[1]) : null, module: m ? (modulesOf[m[2]!] ?? m[2]!) : name.replace(/\.weight$/, '') };
  }).sort((a, b) => b.score - a.score);
  const group = (key: (t: (typeof tensors)[number]) => string | null) => {
    const rows = new Map<string, { score: number; n: number }>();
    for (const t of tensors) {
      const k = key(t);
      if (k === null) continue;
      const r = rows.get(k) ?? { score: 0, n: 0 };
      r.score += t.score;
      r.n += params[t.name]!.data.length;
      rows.set(k, r);
    }
    return rank(rows);
  };
  const modules = group((t) => (t.layer === null ? null : t.module));
  const suggestedTargets = [...modules].filter((m) => Object.values(modulesOf).includes(m.name)).sort((a, b) => b.perElement - a.perElement)
    .slice(0, o.targets ?? 3).map((m) => m.name as LoraTarget);
  return { tensors, modules, layers: group((t) => (t.layer === null ? null : `layer.${t.layer}`)), suggestedTargets, batches: seen };
}
