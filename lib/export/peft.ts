// LoRA adapters as a PEFT adapter folder: adapter_config.json + adapter_model.safetensors with
// PEFT's key names (base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight; A is
// [r, in], B is [out, r]) — what `PeftModel.from_pretrained(base, folder)` loads. Models read from
// GGUF carry q/k rows in llama.cpp's interleaved-RoPE order; their B rows are put back in
// Hugging Face's order here (A is on the input side and needs nothing).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TunekitError } from '../errors.js';
import { GEMMA3_MM_HF } from '../model/gemma.js';
import type { Model } from '../model/load.js';
import { writeSafetensors } from '../safetensors/write.js';
import { Tensor } from '../tensor.js';

const MODULES: Record<string, string> = {
  attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
  ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
  attn_qkv: 'self_attn.qkv_proj', ffn_gate_up: 'mlp.gate_up_proj', // Phi-3's fused modules
};

/**
 * Row permutation between Hugging Face's rotate-half layout and llama.cpp's interleaved one for a
 * q or k projection: GGUF row h·d + 2i is HF row h·d + i, GGUF row h·d + 2i + 1 is HF row h·d + d/2 + i.
 * `toHf` moves rows from GGUF order to HF order (the other direction otherwise).
 */
export function permuteRopeRows(t: Tensor<'f32'>, heads: number, toHf: boolean): Tensor<'f32'> {
  const [rows, cols] = t.shape as [number, number];
  const d = rows / heads, out = Tensor.zeros('f32', [rows, cols]);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < d / 2; i++)
      for (const [g, f] of [[2 * i, i], [2 * i + 1, d / 2 + i]] as const) {
        const gguf = h * d + g, hf = h * d + f;
        const [from, to] = toHf ? [gguf, hf] : [hf, gguf];
        out.data.set(t.data.subarray(from * cols, (from + 1) * cols), to * cols);
      }
  return out;
}

/** Where PEFT finds the decoder layers: a Gemma 3 multimodal model keeps them in its language model. */
function layersPrefix(architecture: string): string {
  return architecture === GEMMA3_MM_HF ? 'base_model.model.model.language_model.layers.' : 'base_model.model.model.layers.';
}

/** The adapters under PEFT's names, q/k B rows in Hugging Face order. */
export function peftTensors(model: Model): Record<string, Tensor<'f32'>> {
  if (model.trainable !== 'lora' || !model.lora) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected a model with LoRA adapters (addLora) to export a PEFT adapter');
  }
  const out: Record<string, Tensor<'f32'>> = {};
  if (model.config.architecture === 'GPT2LMHeadModel') {
    // GPT-2 adapters already carry Hugging Face module names (transformer.h.N.attn.c_attn).
    for (const [name, t] of Object.entries(model.loraTensors())) {
      out[`base_model.model.${name.replace(/\.lora_(a|b)$/, (_, h: string) => `.lora_${h.toUpperCase()}.weight`)}`] = t;
    }
    return out;
  }
  for (const [name, t] of Object.entries(model.loraTensors())) {
    const m = /^blk\.(\d+)\.(\w+)\.lora_(a|b)$/.exec(name);
    if (!m || !MODULES[m[2]!]) throw new TunekitError('ERR_TUNEKIT_INTERNAL', `unexpected adapter tensor ${name}`);
    let tensor = t;
    if (m[3] === 'b' && model.config.interleavedRope !== false && (m[2] === 'attn_q' || m[2] === 'attn_k')) {
      tensor = permuteRopeRows(t, m[2] === 'attn_q' ? model.config.heads : model.config.kvHeads, true);
    }
    out[`${layersPrefix(model.config.architecture)}${m[1]}.${MODULES[m[2]!]}.lora_${m[3]!.toUpperCase()}.weight`] = tensor;
  }
  return out;
}

export interface PeftExportOptions {
  /** base_model_name_or_path in the config (the model's folder or hub id). Default: null. */
  baseModel?: string;
}

/** Writes a PEFT adapter folder for the model's LoRA adapters. */
export async function savePeftAdapter(model: Model, dir: string, options: PeftExportOptions = {}): Promise<void> {
  const tensors = peftTensors(model);
  const lora = model.lora!;
  const allLayers = lora.layers.length === model.config.layers;
  const config = {
    peft_type: 'LORA',
    fan_in_fan_out: false, // Conv1D models (GPT-2) override it below
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: options.baseModel ?? null,
    r: lora.r,
    lora_alpha: lora.alpha,
    use_rslora: lora.rslora,
    lora_dropout: lora.dropout,
    // A multimodal Gemma 3's vision tower has q_proj, k_proj, v_proj too: the language model's only.
    target_modules: model.config.architecture === GEMMA3_MM_HF ? `.*language_model.*\\.(${[...lora.targets].sort().join('|')})` : [...lora.targets].sort(),
    ...(model.config.architecture === 'GPT2LMHeadModel' ? { fan_in_fan_out: true } : {}),
    layers_to_transform: allLayers ? null : [...lora.layers].sort((a, b) => a - b),
    bias: 'none',
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    revision: null,
  };
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors, { metadata: { format: 'pt' } });
  await writeFile(join(dir, 'adapter_config.json'), JSON.stringify(config, null, 2) + '\n');
}
