// Loading a Hugging Face folder (config.json, *.safetensors incl. a sharded index, tokenizer.json)
// of the Llama family (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM with its q/k/v
// biases) into the engine's tensor names, with Mistral's sliding-window attention.
// Matrices stay in their stored dtype (f32/bf16/f16) or are quantized at load (NF4 for QLoRA,
// bf16, Q8_0); norm weights become f32.
import { existsSync } from 'node:fs';
import { readTextFile } from '../files.js';
import { join } from 'node:path';
import { TunekitError } from '../errors.js';
import { show } from '../validate.js';
import type { NativeGpt2Config, NativeLlamaConfig } from '../native.js';
import { openSafetensors } from '../safetensors/read.js';
import { Tensor } from '../tensor.js';
import { quantizeWeights, Weights, type QuantizeFormat } from '../weights.js';
import { hfLongrope, hfRopeAttentionFactor, hfRopeDynamic, hfRopeFactors, isLongrope, type RopeScaling } from './rope-scaling.js';
import { checkFits } from './memory.js';
import { fusedBlocks, splitRows } from './fused.js';
import { GEMMA2_HF, GEMMA3_HF, GEMMA3_MM_HF, GEMMA3_TEXT_DEFAULTS, GEMMA_NORM_NAMES, gemmaGeneration, gemmaHfConfig } from './gemma.js';
import { configValues } from './config-values.js';

const PHI3_HF = 'Phi3ForCausalLM';
const SUPPORTED = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM', 'Qwen3ForCausalLM', PHI3_HF, GEMMA2_HF, GEMMA3_HF, GEMMA3_MM_HF];

export interface HfLoaded {
  architecture: string;
  config: NativeLlamaConfig;
  /** The rope_scaling block when there is RoPE scaling (written back by a merged export). */
  ropeScaling?: Record<string, unknown>;
  /** max_position_embeddings, where the config has it. */
  maxPositions?: number;
  tensors: Record<string, Tensor | Weights>;
}

/** A float tensor as f32 (bf16 / f16 widened exactly). */
export function f32Of(t: Tensor): Tensor<'f32'> {
  if (t.dtype === 'f32') return t as Tensor<'f32'>;
  const out = Tensor.zeros('f32', t.shape);
  const src = t.data as Uint16Array;
  if (t.dtype === 'bf16') {
    const bits = new Uint32Array(out.handle.buffer);
    for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  } else if (t.dtype === 'f16') {
    for (let i = 0; i < src.length; i++) {
      const h = src[i]!, s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
      out.data[i] = e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
    }
  } else {
    throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `Expected a floating-point weight but received ${t.dtype}`);
  }
  return out;
}

/**
 * Checks that a config's layer count is the number of layers whose tensors the file holds,
 * before anything per layer is built (an absurd num_hidden_layers once filled the heap first; one
 * too few loaded a truncated model without a word). GGUF files: block_count against blk.N.
 */
export function checkLayerCount(configFile: string, dir: string, key: string, layers: number, names: string[], prefix: RegExp): void {
  const present = new Set<string>();
  for (const n of names) {
    const m = prefix.exec(n);
    if (m) present.add(m[1]!);
  }
  if (layers !== present.size) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${configFile}: ${key} is ${layers} but ${dir} holds the tensors of ${present.size} layers`);
  }
}

export interface Gpt2Loaded {
  architecture: 'GPT2LMHeadModel';
  config: NativeGpt2Config;
  tensors: Record<string, Tensor | Weights>;
}

/** GPT-2 folders: weights under their Hugging Face names (Conv1D matrices are [in, out]). */
async function loadGpt2(dir: string, cfg: Record<string, unknown>, configFile: string, quantize?: QuantizeFormat): Promise<Gpt2Loaded> {
  const get = (key: string, fallback?: number) => {
    const v = cfg[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${configFile}: expected a positive number ${key} but found ${show(v)}`);
    return v;
  };
  const act = cfg.activation_function ?? 'gelu_new';
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${configFile}: activation ${show(act)} is not supported yet`);
  const dim = get('n_embd');
  const config: NativeGpt2Config = {
    dim, layers: get('n_layer'), heads: get('n_head'), vocab: get('vocab_size'), positions: get('n_positions'),
    ffn: (cfg.n_inner as number | null | undefined) ?? 4 * dim, eps: get('layer_norm_epsilon', 1e-5),
  };
  const reader = await openSafetensors(dir);
  const tensors: Record<string, Tensor | Weights> = {};
  try {
    checkLayerCount(configFile, dir, 'n_layer', config.layers, reader.names(), /^(?:transformer\.)?h\.(\d+)\./);
    checkFits(dir, reader.names().reduce((a, n) => a + reader.info(n).byteLength, 0));
    for (const name of reader.names()) {
      if (name.endsWith('.attn.bias') || name.endsWith('.attn.masked_bias')) continue;  // old causal-mask buffers
      const t = await reader.read(name);
      const matrix = t.shape.length === 2 && name !== 'transformer.wpe.weight';
      if (!matrix) tensors[name] = f32Of(t);
      else if (quantize && name !== 'transformer.wte.weight') tensors[name] = await quantizeWeights(f32Of(t), { format: quantize });
      else tensors[name] = t;
    }
  } finally {
    await reader.close();
  }
  return { architecture: 'GPT2LMHeadModel', config, tensors };
}

/** 1 + w (Gemma's RMSNorm scale as the engine's plain RMSNorm takes it), in a new tensor. */
function plusOne(t: Tensor<'f32'>): Tensor<'f32'> {
  return Tensor.from('f32', t.shape, Float32Array.from(t.data, (v) => 1 + v));
}

export async function loadHfFolder(dir: string, quantize?: QuantizeFormat): Promise<HfLoaded | Gpt2Loaded> {
  const configFile = join(dir, 'config.json');
  if (!existsSync(configFile)) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${dir}: no config.json (expected a Hugging Face model folder)`);
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(await readTextFile(configFile));
  } catch (e) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${configFile}: invalid JSON (${(e as Error).message})`);
  }
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${configFile}: expected a JSON object but found ${show(cfg)}`);
  }
  const archs = cfg.architectures;
  const arch = Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] : (typeof cfg.model_type === 'string' ? cfg.model_type : show(cfg.model_type));
  if (arch === 'GPT2LMHeadModel') return loadGpt2(dir, cfg, configFile, quantize);
  // Gemma 3 4B, 12B, 27B: the language model of the multimodal folder (text_config; the vision
  // tower and projector are not loaded). On text alone it is Gemma 3's text model.
  const multimodal = arch === GEMMA3_MM_HF;
  if (multimodal) {
    const text = cfg.text_config;
    if (typeof text !== 'object' || text === null || Array.isArray(text)) {
      throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${configFile}: expected a text_config object in a Gemma3ForConditionalGeneration config but found ${show(text)}`);
    }
    cfg = { ...GEMMA3_TEXT_DEFAULTS, ...(text as Record<string, unknown>) };
  }
  if (!SUPPORTED.includes(arch)) {
    throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${configFile}: architecture ${arch} is not supported yet; tunekit loads ${SUPPORTED.join(', ')}`);
  }
  const values = configValues(cfg, configFile), { int, positive } = values;
  // RoPE scaling: rope_scaling (transformers 4) or rope_parameters (transformers 5, with the base).
  const ropeParams = cfg.rope_parameters as (RopeScaling & { rope_theta?: number }) | undefined;
  const scaling = (cfg.rope_scaling as RopeScaling | null | undefined) ?? ropeParams;
  // Qwen2 always has q/k/v biases; Llama may declare attention_bias (q/k/v and o: o's is not supported).
  const qkvBias = arch === 'Qwen2ForCausalLM';
  // Qwen3: no biases, an RMSNorm over each head of q and k before RoPE.
  const generation = gemmaGeneration(arch), gemma = generation !== 0;
  // Phi-3: q/k/v fused in qkv_proj and gate/up in gate_up_proj (split into row blocks below).
  const phi3 = arch === PHI3_HF;
  // Phi-4-mini rotates the first partial_rotary_factor of each head.
  const partial = ropeParams?.partial_rotary_factor ?? cfg.partial_rotary_factor ?? 1;
  if (typeof partial !== 'number' || !(partial > 0 && partial <= 1)) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${configFile}: expected partial_rotary_factor in (0, 1] but found ${show(partial)}`);
  }
  const qkNorm = arch === 'Qwen3ForCausalLM' || generation === 3;
  if (cfg.attention_bias === true || cfg.mlp_bias === true) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${configFile}: attention_bias/mlp_bias are not supported yet`);
  const dim = int('hidden_size'), heads = int('num_attention_heads');
  const g = generation ? gemmaHfConfig(cfg, configFile, values, dim, int('num_hidden_layers'), generation) : undefined;
  const config: NativeLlamaConfig = {
    dim,
    layers: int('num_hidden_layers'),
    ffn: int('intermediate_size'),
    heads,
    kvHeads: int('num_key_value_heads', heads),
    headDim: int('head_dim', dim / heads),
    vocab: int('vocab_size'),
    eps: positive('rms_norm_eps', cfg.rms_norm_eps, 1e-6),
    ropeTheta: g ? g.rope.theta : positive('rope_theta', cfg.rope_theta ?? ropeParams?.rope_theta, 10000),
    // Gemma's config class ties them unless told otherwise.
    tiedEmbeddings: cfg.tie_word_embeddings === true || (gemma && cfg.tie_word_embeddings === undefined),
    interleavedRope: false,
    qkvBias,
    qkNorm,
    // Mistral (v0.1) attends within a sliding window; Qwen2 only when use_sliding_window is set.
    slidingWindow: typeof cfg.sliding_window === 'number' && (arch === 'MistralForCausalLM' || phi3 || cfg.use_sliding_window === true) ? cfg.sliding_window : 0,
    ...(phi3 ? { fusedProjections: true } : {}),
    ...(g ? { ...g.native, ...(g.rope.localTheta ? { ropeThetaLocal: g.rope.localTheta } : {}) } : {}),
  };
  const maxPositions = typeof cfg.max_position_embeddings === 'number' ? cfg.max_position_embeddings : undefined;
  const rotaryDim = Math.floor(config.headDim * partial);
  if (rotaryDim !== config.headDim) {
    if (rotaryDim % 2 !== 0) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${configFile}: partial_rotary_factor ${partial} of head_dim ${config.headDim} rotates an odd ${rotaryDim} dimensions`);
    config.rotaryDim = rotaryDim;
  }
  let ropeScaling: Record<string, unknown> | undefined;
  if (!g && isLongrope(scaling)) {
    const original = typeof cfg.original_max_position_embeddings === 'number' ? cfg.original_max_position_embeddings : undefined;
    const l = hfLongrope(scaling!, rotaryDim / 2, configFile, maxPositions, original);
    Object.assign(config, { ropeFreqFactors: l.short, ropeFreqFactorsLong: l.long, ropeLongAfter: l.after, ...(l.attention !== 1 ? { ropeAttentionFactor: l.attention } : {}) });
    // Written back whole by a merged export (the factor and original context made explicit).
    ropeScaling = { ...Object.fromEntries(Object.entries(scaling!).filter(([k]) => k !== 'rope_theta' && k !== 'partial_rotary_factor')), rope_type: 'longrope', factor: l.factor, original_max_position_embeddings: l.after };
  } else {
    const ropeFreqFactors = hfRopeFactors(g ? g.rope.scaling : scaling, rotaryDim, config.ropeTheta, configFile, maxPositions);
    if (ropeFreqFactors) config.ropeFreqFactors = ropeFreqFactors;
    const attentionFactor = hfRopeAttentionFactor(g ? g.rope.scaling : scaling, rotaryDim, config.ropeTheta, configFile, maxPositions);
    if (attentionFactor !== 1) config.ropeAttentionFactor = attentionFactor;
    const dynamic = hfRopeDynamic(g ? g.rope.scaling : scaling, configFile, maxPositions);
    if (dynamic) Object.assign(config, { ropeDynamicFactor: dynamic.factor, ropeDynamicAfter: dynamic.after });
    ropeScaling = (ropeFreqFactors || dynamic) && scaling ? Object.fromEntries(Object.entries(scaling).filter(([k]) => k !== 'rope_theta')) : undefined;
  }
  const reader = await openSafetensors(dir);
  const tensors: Record<string, Tensor | Weights> = {};
  try {
    // Stored bytes, plus fp32 copies of the (small) norm vectors; quantizing passes through fp32 one
    // matrix at a time.
    // The multimodal folders keep the language model under language_model.model. (the hub's
    // files) or model.language_model. (written by transformers 4.52 to 4.57).
    const textPrefix = !multimodal ? 'model.' : reader.has('model.language_model.embed_tokens.weight') ? 'model.language_model.' : 'language_model.model.';
    const stored = (name: string) => (name.startsWith('model.') ? textPrefix + name.slice('model.'.length) : name);
    checkLayerCount(configFile, dir, 'num_hidden_layers', config.layers, reader.names(), new RegExp(`^${textPrefix.replace(/\./g, '\\.')}layers\\.(\\d+)\\.`));
    checkFits(dir, reader.names().reduce((a, n) => a + reader.info(n).byteLength, 0));
    const qd = config.heads * config.headDim, kvd = config.kvHeads * config.headDim;
    const want: [string, string, number[]][] = [['model.embed_tokens.weight', 'token_embd.weight', [config.vocab, dim]], ['model.norm.weight', 'output_norm.weight', [dim]]];
    if (!config.tiedEmbeddings) want.push(['lm_head.weight', 'output.weight', [config.vocab, dim]]);
    for (let i = 0; i < config.layers; i++) {
      const p = `model.layers.${i}.`, q = `blk.${i}.`;
      want.push(
        [`${p}input_layernorm.weight`, `${q}attn_norm.weight`, [dim]],
        ...((phi3
          ? [[`${p}self_attn.qkv_proj.weight`, `${q}attn_qkv.weight`, [qd + 2 * kvd, dim]]]
          : [
              [`${p}self_attn.q_proj.weight`, `${q}attn_q.weight`, [qd, dim]],
              [`${p}self_attn.k_proj.weight`, `${q}attn_k.weight`, [kvd, dim]],
              [`${p}self_attn.v_proj.weight`, `${q}attn_v.weight`, [kvd, dim]],
            ]) as [string, string, number[]][]),
        ...(qkvBias
          ? ([
              [`${p}self_attn.q_proj.bias`, `${q}attn_q.bias`, [qd]],
              [`${p}self_attn.k_proj.bias`, `${q}attn_k.bias`, [kvd]],
              [`${p}self_attn.v_proj.bias`, `${q}attn_v.bias`, [kvd]],
            ] as [string, string, number[]][])
          : []),
        ...(qkNorm
          ? ([
              [`${p}self_attn.q_norm.weight`, `${q}attn_q_norm.weight`, [config.headDim]],
              [`${p}self_attn.k_norm.weight`, `${q}attn_k_norm.weight`, [config.headDim]],
            ] as [string, string, number[]][])
          : []),
        [`${p}self_attn.o_proj.weight`, `${q}attn_output.weight`, [dim, qd]],
        ...(gemma
          ? GEMMA_NORM_NAMES.filter(([h]) => h !== 'input_layernorm').map(([h, o]) => [`${p}${h}.weight`, `${q}${o}.weight`, [dim]] as [string, string, number[]])
          : [[`${p}post_attention_layernorm.weight`, `${q}ffn_norm.weight`, [dim]] as [string, string, number[]]]),
        ...((phi3
          ? [[`${p}mlp.gate_up_proj.weight`, `${q}ffn_gate_up.weight`, [2 * config.ffn, dim]]]
          : [
              [`${p}mlp.gate_proj.weight`, `${q}ffn_gate.weight`, [config.ffn, dim]],
              [`${p}mlp.up_proj.weight`, `${q}ffn_up.weight`, [config.ffn, dim]],
            ]) as [string, string, number[]][]),
        [`${p}mlp.down_proj.weight`, `${q}ffn_down.weight`, [dim, config.ffn]],
      );
    }
    for (const [name, ours, shape] of want) {
      const hf = stored(name);
      if (!reader.has(hf)) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${dir}: missing tensor ${hf}`);
      const info = reader.info(hf);
      if (info.shape.join() !== shape.join()) {
        throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${dir}: tensor ${hf} has shape [${info.shape.join(', ')}] but config.json implies [${shape.join(', ')}]`);
      }
      const t = await reader.read(hf);
      const fused = /^(blk\.\d+\.)(attn_qkv|ffn_gate_up)\.weight$/.exec(ours);
      if (fused) {  // the blocks as the engine's own projections
        const blocks = fusedBlocks(fused[2] === 'attn_qkv' ? 'qkv' : 'gate_up', config);
        const parts = splitRows(t.dtype === 'f32' || t.dtype === 'bf16' || t.dtype === 'f16' ? t : f32Of(t), blocks.map(([, n]) => n), `${dir}: tensor ${hf}`) as Tensor[];
        for (const [i, block] of parts.entries()) {
          tensors[`${fused[1]}${blocks[i]![0]}.weight`] = quantize && quantize !== block.dtype ? await quantizeWeights(f32Of(block), { format: quantize }) : block;
        }
        continue;
      }
      if (shape.length === 1) tensors[ours] = gemma && ours.endsWith('norm.weight') ? plusOne(f32Of(t)) : f32Of(t);
      else if (quantize && quantize !== t.dtype && ours !== 'token_embd.weight') tensors[ours] = await quantizeWeights(f32Of(t), { format: quantize });
      else tensors[ours] = t.dtype === 'f32' || t.dtype === 'bf16' || t.dtype === 'f16' ? t : f32Of(t);
    }
  } finally {
    await reader.close();
  }
  return { architecture: arch, config, tensors, ...(ropeScaling ? { ropeScaling } : {}), ...(maxPositions ? { maxPositions } : {}) };
}
