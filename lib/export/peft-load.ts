// Reading a PEFT LoRA adapter folder (ours or one PEFT saved) onto a loaded model: the inverse of
// savePeftAdapter, so `tunekit generate --adapter` and evaluation can use a trained adapter.
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { readTextFile } from '../files.js';
import { join } from 'node:path';
import { TunekitError } from '../errors.js';
import { pickleRefusal } from '../safetensors/pickle.js';
import type { Model } from '../model/load.js';
import { openSafetensors } from '../safetensors/read.js';
import type { Tensor } from '../tensor.js';
import { permuteRopeRows } from './peft.js';

const OURS: Record<string, string> = {
  'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output',
  'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
  'self_attn.qkv_proj': 'attn_qkv', 'mlp.gate_up_proj': 'ffn_gate_up', // Phi-3's fused modules
};

/** Adds the folder's adapters to the model (replacing any it has). */
export async function loadPeftAdapter(model: Model, dir: string): Promise<void> {
  const st = await stat(dir).catch(() => null);
  if (st?.isFile()) {
    const what = dir.endsWith('.gguf') ? 'a GGUF LoRA adapter (for llama.cpp)' : dir.endsWith('.safetensors') ? 'a safetensors file' : 'a file';
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${dir} is ${what}; expected a PEFT adapter folder (adapter_config.json + adapter_model.safetensors), such as the adapter/ folder a tunekit run writes beside adapter.gguf${dir.endsWith('.safetensors') ? ': pass the folder that holds it' : ''}`);
  }
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(await readTextFile(join(dir, 'adapter_config.json')));
  } catch (e) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${dir}: expected a PEFT adapter folder with adapter_config.json (${(e as Error).message})`);
  }
  if (cfg.peft_type !== 'LORA') throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${dir}: peft_type ${JSON.stringify(cfg.peft_type)}; tunekit reads LORA adapters`);
  const weights = join(dir, 'adapter_model.safetensors');
  if (!existsSync(weights) && existsSync(join(dir, 'adapter_model.bin'))) throw pickleRefusal(join(dir, 'adapter_model.bin'), 'adapter');
  const f = await openSafetensors(weights);
  try {
    const tensors: Record<string, Tensor<'f32'>> = {};
    const layers = new Set<number>(), targets = new Set<string>();
    for (const name of f.names()) {
      if (/vision_tower|vision_model|multi_modal_projector/.test(name)) {
        throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${dir}: adapter tensor ${name} is on the vision tower, which tunekit does not load (it runs Gemma 3's language model)`);
      }
      const m = /layers\.(\d+)\.(self_attn\.\w+|mlp\.\w+)\.lora_(A|B)(?:\.default)?\.weight$/.exec(name);
      if (!m || !OURS[m[2]!]) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${dir}: adapter tensor ${name} is not a LoRA matrix of a Llama projection`);
      const t = await f.read(name);
      if (t.dtype !== 'f32') throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${dir}: ${name} is ${t.dtype}; expected f32`);
      let tensor = t as Tensor<'f32'>;
      const ours = OURS[m[2]!]!;
      if (m[3] === 'B' && model.config.interleavedRope !== false && (ours === 'attn_q' || ours === 'attn_k')) {
        tensor = permuteRopeRows(tensor, ours === 'attn_q' ? model.config.heads : model.config.kvHeads, false);
      }
      tensors[`blk.${m[1]}.${ours}.lora_${m[3]!.toLowerCase()}`] = tensor;
      layers.add(Number(m[1]));
      targets.add(m[2]!.split('.')[1]!);
    }
    const r = Number(cfg.r), alpha = Number(cfg.lora_alpha ?? r);
    model.addLora({ r, alpha, rslora: cfg.use_rslora === true, dropout: Number(cfg.lora_dropout ?? 0), targets: [...targets] as never, layers: [...layers].sort((a, b) => a - b) });
    model.setLoraTensors(tensors);
  } finally {
    await f.close();
  }
}
