// A fine-tuned model as a plain Hugging Face folder: config.json, model.safetensors (sharded past
// 5 GB, as transformers does), generation_config.json and the tokenizer files, with LoRA adapters folded into the
// weights (W + scale·B·A, computed in fp32 one matrix at a time) or the fully fine-tuned weights.
// Quantized bases (GGUF Q4/Q8, NF4) are dequantized; q/k rows of GGUF models are put back into
// Hugging Face's rotate-half order, so transformers loads the folder as it is.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TunekitError } from '../errors.js';
import { f32Of } from '../model/hf.js';
import type { Model } from '../model/load.js';
import { isLongrope } from '../model/rope-scaling.js';
import type { ModelConfig } from '../model/types.js';
import { gemm } from '../ops/gemm.js';
import { writeShardedSafetensors } from '../safetensors/write.js';
import { Tensor } from '../tensor.js';
import { Weights } from '../weights.js';
import { permuteRopeRows } from './peft.js';
import { GEMMA_NORM_NAMES, gemmaGeneration, gemmaHfConfigOf } from '../model/gemma.js';

const LAYER_NAMES: Record<string, string> = {
  attn_norm: 'input_layernorm', ffn_norm: 'post_attention_layernorm',
  attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
  ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
  attn_q_norm: 'self_attn.q_norm', attn_k_norm: 'self_attn.k_norm', // Qwen3
  attn_qkv: 'self_attn.qkv_proj', ffn_gate_up: 'mlp.gate_up_proj', // Phi-3 (joined by withFused)
};

// Gemma's norms: four per layer, named differently (model/gemma.ts).
const GEMMA_LAYER_NAMES: Record<string, string> = { ...LAYER_NAMES, ...Object.fromEntries(GEMMA_NORM_NAMES.map(([hf, ours]) => [ours, hf])) };

/** Hugging Face's name for one of the engine's (GGUF-style) tensor names. */
export function hfName(name: string, gemma = false): string {
  if (name === 'token_embd.weight') return 'model.embed_tokens.weight';
  if (name === 'output_norm.weight') return 'model.norm.weight';
  if (name === 'output.weight') return 'lm_head.weight';
  const names = gemma ? GEMMA_LAYER_NAMES : LAYER_NAMES;
  const m = /^blk\.(\d+)\.(\w+)\.(weight|bias)$/.exec(name);
  if (!m || !names[m[2]!]) throw new TunekitError('ERR_TUNEKIT_INTERNAL', `no Hugging Face name for ${name}`);
  return `model.layers.${m[1]}.${names[m[2]!]}.${m[3]}`;
}

async function asF32(t: Tensor | Weights): Promise<Tensor<'f32'>> {
  return t instanceof Weights ? t.dequantize() : f32Of(t);
}

function modelType(architecture: string): string {
  if (architecture === 'MistralForCausalLM') return 'mistral';
  if (architecture === 'Phi3ForCausalLM' || architecture === 'phi3') return 'phi3';
  if (architecture === 'Qwen2ForCausalLM' || architecture === 'qwen2') return 'qwen2';
  if (architecture === 'Qwen3ForCausalLM' || architecture === 'qwen3') return 'qwen3';
  return 'llama';
}

const HF_ARCHITECTURES: Record<string, string> = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM', phi3: 'Phi3ForCausalLM' };

// Phi-3: the engine's row blocks -> the fused matrix transformers stores, and the adapter on it.
const FUSED: [string, string[]][] = [
  ['attn_qkv', ['attn_q', 'attn_k', 'attn_v']],
  ['ffn_gate_up', ['ffn_gate', 'ffn_up']],
];

/** The blocks of each layer's fused matrices joined (rows in order), as f32 [rows, cols]. */
function joinRows(parts: Tensor<'f32'>[]): Tensor<'f32'> {
  const cols = parts[0]!.shape[1]!, rows = parts.reduce((n, p) => n + p.shape[0]!, 0);
  const out = Tensor.zeros('f32', [rows, cols]);
  let at = 0;
  for (const p of parts) out.data.set(p.data, at), (at += p.data.length);
  return out;
}

/** The source weights with Phi-3's blocks joined back into its fused matrices (blk.N.attn_qkv, ffn_gate_up). */
async function withFused(c: ModelConfig, source: Record<string, Tensor | Weights>): Promise<Record<string, Tensor | Weights>> {
  if (!c.fusedProjections) return source;
  const out = { ...source };
  for (let i = 0; i < c.layers; i++)
    for (const [fused, parts] of FUSED) {
      const names = parts.map((p) => `blk.${i}.${p}.weight`);
      out[`blk.${i}.${fused}.weight`] = joinRows(await Promise.all(names.map((n) => asF32(source[n]!))));
      for (const n of names) delete out[n];
    }
  return out;
}

// Fields transformers' config classes type as float and check strictly: JSON has one number
// type, so a whole value (Gemma 2's cap of 30) must be written as 30.0 or the class refuses it.
const FLOAT_FIELDS = ['attn_logit_softcapping', 'final_logit_softcapping'];

function configJson(config: Record<string, unknown>): string {
  let text = JSON.stringify(config, null, 2);
  for (const key of FLOAT_FIELDS) text = text.replace(new RegExp(`("${key}": -?\\d+)(?=,?\n)`), '$1.0');
  return text + '\n';
}

/** Writes the model, adapters merged, as a Hugging Face folder that transformers loads. */
export async function saveMergedModel(model: Model, dir: string): Promise<void> {
  const c = model.config;
  if (c.architecture === 'GPT2LMHeadModel') throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', 'Merging covers the Llama family for now');
  const interleaved = c.interleavedRope !== false;
  const gemma = gemmaGeneration(c.architecture) !== 0;
  // RoPE scaling goes back as the rope_scaling it was read from; a GGUF file holds only the
  // per-pair divisors (rope_freqs.weight), from which transformers' parameters cannot be recovered.
  if (c.ropeFreqFactors && !c.ropeScaling) {
    throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', 'Merging a GGUF model with RoPE scaling (rope_freqs.weight) into a Hugging Face folder is not supported: the file does not hold the rope_scaling parameters transformers needs. Merge from the Hugging Face folder of the same model, or export the adapter (PEFT / GGUF LoRA) instead');
  }
  const source = await withFused(c, model.trainable === 'full' ? model.fullTensors() : model.weights);
  const lora = model.trainable === 'lora' ? model.loraTensors() : {};
  const scale = model.lora ? (model.lora.rslora ? model.lora.alpha / Math.sqrt(model.lora.r) : model.lora.alpha / model.lora.r) : 0;
  const out: Record<string, Tensor<'f32'>> = {};
  for (const [name, t] of Object.entries(source)) {
    let w = await asF32(t);
    const base = name.replace(/\.weight$/, '');
    const a = lora[`${base}.lora_a`], b = lora[`${base}.lora_b`];
    if (a && b) {
      const merged = Tensor.from('f32', w.shape, w.data); // never write into the loaded weights
      await gemm(b, a, { alpha: scale, beta: 1, out: merged }); // W += scale·B·A
      w = merged;
    }
    const proj = /^blk\.\d+\.(attn_q|attn_k)\.(weight|bias)$/.exec(name);
    if (proj && interleaved) {
      const heads = proj[1] === 'attn_q' ? c.heads : c.kvHeads;
      const rows = w.shape[0]!;
      w = w.shape.length === 2 ? permuteRopeRows(w, heads, true) : Tensor.from('f32', [rows], permuteRopeRows(Tensor.from('f32', [rows, 1], w.data), heads, true).data);
    }
    // Gemma's norms multiply by 1 + w: the engine holds 1 + w, transformers' files w.
    if (gemma && name.endsWith('norm.weight')) w = Tensor.from('f32', w.shape, Float32Array.from(w.data, (v) => v - 1));
    out[hfName(name, gemma)] = w;
  }
  if (c.tiedEmbeddings) delete out['lm_head.weight'];
  const tok = model.tokenizer;
  const idOf = (t: string | null | undefined) => (t && tok ? (tok.encode(t, { addSpecialTokens: false })[0] ?? null) : null);
  const config = gemma ? { ...gemmaHfConfigOf(c), bos_token_id: idOf(tok?.bosToken), eos_token_id: tok?.eosTokenId ?? null, pad_token_id: idOf(tok?.padToken) } : {
    architectures: [HF_ARCHITECTURES[c.architecture] ?? c.architecture],
    model_type: modelType(c.architecture),
    hidden_size: c.dim, intermediate_size: c.ffn, num_hidden_layers: c.layers, num_attention_heads: c.heads,
    num_key_value_heads: c.kvHeads, head_dim: c.headDim, vocab_size: c.vocab, rms_norm_eps: c.eps, rope_theta: c.ropeTheta,
    tie_word_embeddings: c.tiedEmbeddings, hidden_act: 'silu',
    // The source's (a GGUF file's context_length); 8192 where neither says: a limit for users, and dynamic NTK's threshold.
    max_position_embeddings: c.maxPositions ?? 8192,
    ...(modelType(c.architecture) === 'qwen2' ? {} : { attention_bias: false }),
    ...(c.ropeScaling ? { rope_scaling: c.ropeScaling } : {}),
    // longrope's factor is max_position_embeddings / original_max_position_embeddings where not given.
    ...(isLongrope(c.ropeScaling) && typeof c.ropeScaling?.original_max_position_embeddings === 'number' && typeof c.ropeScaling.factor === 'number'
      ? { original_max_position_embeddings: c.ropeScaling.original_max_position_embeddings, max_position_embeddings: Math.round(c.ropeScaling.factor * c.ropeScaling.original_max_position_embeddings) }
      : {}),
    ...(c.rotaryDim ? { partial_rotary_factor: c.rotaryDim / c.headDim } : {}),
    ...(c.slidingWindow ? { sliding_window: c.slidingWindow, ...(modelType(c.architecture) === 'qwen2' ? { use_sliding_window: true } : {}) } : {}),
    bos_token_id: idOf(tok?.bosToken), eos_token_id: tok?.eosTokenId ?? null, pad_token_id: idOf(tok?.padToken), torch_dtype: 'float32',
  };
  await mkdir(dir, { recursive: true });
  await writeShardedSafetensors(dir, out, { metadata: { format: 'pt' } });
  await writeFile(join(dir, 'config.json'), configJson(config));
  await writeFile(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id }, null, 2) + '\n');
  for (const [file, text] of Object.entries(tok?.files() ?? {})) await writeFile(join(dir, file), text);
}
