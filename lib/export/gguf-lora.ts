// LoRA adapters as a GGUF LoRA file that llama.cpp (and node-llama-cpp) load beside the base GGUF:
// general.type = adapter, adapter.type = lora, adapter.lora.alpha, and per adapted weight
// "blk.N.attn_q.weight.lora_a" (A, [r, in]) and ".lora_b" (B, [out, r]), f32. llama.cpp scales by
// alpha / r, so rsLoRA's alpha / sqrt(r) is written as alpha · sqrt(r). The adapter names the
// base's llama.cpp architecture (llama.cpp refuses a mismatch): "llama" for Llama, Mistral and
// SmolLM, whose q/k rows llama.cpp keeps in interleaved-RoPE order (so models read from a Hugging
// Face folder get their q/k B rows permuted into it), "qwen2", "qwen3", "phi3", "gemma2" and "gemma3",
// which keep Hugging Face's order. Phi-3's adapters are on its fused matrices (attn_qkv, ffn_up).
import { TunekitError } from '../errors.js';
import { writeGguf } from '../gguf/write.js';
import { gemmaGeneration } from '../model/gemma.js';
import type { Model } from '../model/load.js';
import type { Tensor } from '../tensor.js';
import { permuteRopeRows } from './peft.js';

/** Writes the model's LoRA adapters as a GGUF LoRA adapter file. */
export async function saveGgufLora(model: Model, file: string): Promise<void> {
  if (model.trainable !== 'lora' || !model.lora) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected a model with LoRA adapters (addLora) to export a GGUF LoRA adapter');
  }
  if (model.config.architecture.startsWith('GPT2')) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', 'GGUF LoRA export covers the llama architecture');
  const { r, alpha, rslora } = model.lora;
  const a = model.config.architecture;
  const arch = a === 'Qwen2ForCausalLM' || a === 'qwen2' ? 'qwen2' : a === 'Qwen3ForCausalLM' || a === 'qwen3' ? 'qwen3'
    : a === 'Phi3ForCausalLM' || a === 'phi3' ? 'phi3' : gemmaGeneration(a) ? `gemma${gemmaGeneration(a)}` : 'llama';
  const tensors: Record<string, Tensor<'f32'>> = {};
  for (const [name, t] of Object.entries(model.loraTensors())) {
    const m = /^(blk\.\d+\.(\w+))\.lora_(a|b)$/.exec(name)!;
    let tensor = t;
    if (m[3] === 'b' && arch === 'llama' && model.config.interleavedRope === false && (m[2] === 'attn_q' || m[2] === 'attn_k')) {
      tensor = permuteRopeRows(t, m[2] === 'attn_q' ? model.config.heads : model.config.kvHeads, false);
    }
    // Phi-3's fused gate/up adapter goes on the matrix llama.cpp's phi3 calls ffn_up.
    const base = m[2] === 'ffn_gate_up' ? m[1].replace(/ffn_gate_up$/, 'ffn_up') : m[1];
    tensors[`${base}.weight.lora_${m[3]}`] = tensor;
  }
  await writeGguf(file, {
    'general.architecture': { type: 'string', value: arch },
    'general.type': { type: 'string', value: 'adapter' },
    'general.name': { type: 'string', value: 'tunekit LoRA adapter' },
    'adapter.type': { type: 'string', value: 'lora' },
    'adapter.lora.alpha': { type: 'f32', value: rslora ? alpha * Math.sqrt(r) : alpha },
  }, tensors);
}
