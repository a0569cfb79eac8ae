// Phi-3 (test/reference/make_tiny_phi3.py: a tiny random Phi3ForCausalLM with q/k/v fused in
// qkv_proj and gate/up in gate_up_proj, grouped-query attention, a sliding window of 5, untied
// head) against transformers and PEFT: logits, greedy continuation, LoRA on PEFT's four Phi-3
// modules (each fused matrix adapted whole: one A, B over all its rows) and every weight's full
// fine-tuning gradient.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expectPeftLoraStep, fixtureBatch, readFixture, withFixtureLora } from './fixture.js';
import { perToken, relErr } from './reference.js';
import { loadModel, loadPeftAdapter, openSafetensors, saveMergedModel, savePeftAdapter, TunekitError } from '../lib/index.js';

const dir = fileURLToPath(new URL('./reference/fixtures/tiny-phi3/', import.meta.url));


const concat = (...parts: Float32Array[]) => {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
};

describe('Phi-3', () => {
  it('from the Hugging Face folder gives transformers\' logits and greedy continuation', async () => {
    const fx = await readFixture(dir);
    const ids = [...fx.ids!.data] as number[];
    const m = await loadModel(dir);
    expect(m.config).toMatchObject({ architecture: 'Phi3ForCausalLM', fusedProjections: true, slidingWindow: 5, kvHeads: 2, tiedEmbeddings: false });
    expect(relErr((await m.logits(ids.slice(0, 12))).data, fx.logits!.data)).toBeLessThan(1e-4);
    expect(relErr((await m.logits(ids.slice(12))).data, fx.logits1!.data)).toBeLessThan(1e-4);
    const steps = [];
    for await (const s of m.generate(ids.slice(0, 5), { maxTokens: 10 })) steps.push(s.tokenId);
    expect(steps).toEqual([...fx.greedy!.data]);

    // The GGUF: attn_qkv and the fused ffn_up split into blocks, layer 0's as Q8_0 blocks of rows.
    const g = await loadModel(join(dir, 'tiny-phi3.gguf'));
    expect(g.config).toMatchObject({ architecture: 'phi3', fusedProjections: true, slidingWindow: 5, interleavedRope: false, headDim: 16 });
    expect(g.weights['blk.0.attn_k.weight']).toMatchObject({ format: 'q8_0', shape: [32, 64] });
    expect(g.weights['blk.0.ffn_up.weight']).toMatchObject({ format: 'q8_0', shape: [80, 64] });
    expect(relErr((await g.logits(ids.slice(0, 12))).data, fx.gguf_logits!.data)).toBeLessThan(1e-4);
    expect(relErr((await g.logits(ids.slice(12))).data, fx.gguf_logits1!.data)).toBeLessThan(1e-4);
  });

  it('adapts qkv_proj, o_proj, gate_up_proj and down_proj as PEFT does (one adapter per fused matrix), with PEFT\'s gradients', async () => {
    const fx = await readFixture(dir);
    const m = await loadModel(dir);
    expect(() => m.addLora({ targets: ['q_proj'] })).toThrow(TunekitError);
    const names = withFixtureLora(m, fx);
    expect(names).toHaveLength(3 * 4 * 2);
    expect(m.loraTensors()['blk.0.attn_qkv.lora_b']!.shape).toEqual([64 + 2 * 32, 3]);
    await expectPeftLoraStep(m, fx, names);
  });

  it('gives every weight the full fine-tuning gradient transformers gives (the fused matrices\' as their blocks)', async () => {
    const fx = await readFixture(dir);
    for (const checkpoint of [false, true]) {
      const full = await loadModel(dir);
      full.enableFullTraining();
      const s = await full.trainStep(fixtureBatch(fx), { checkpoint });
      expect(Math.abs(s.loss - fx.loss!.data[0]!)).toBeLessThan(1e-5);
      const g = full.fullTensors('grads');
      const per = (n: string) => perToken(g[n]!, s.tokens);
      const hf = (n: string) => fx[`grad.${n}`]!.data as Float32Array;
      expect(relErr(per('token_embd.weight'), hf('model.embed_tokens.weight'))).toBeLessThan(1e-4);
      expect(relErr(per('output.weight'), hf('lm_head.weight'))).toBeLessThan(1e-4);
      for (let i = 0; i < 3; i++) {
        const b = `blk.${i}.`, p = `model.layers.${i}.`;
        expect(relErr(concat(per(`${b}attn_q.weight`), per(`${b}attn_k.weight`), per(`${b}attn_v.weight`)), hf(`${p}self_attn.qkv_proj.weight`)), `qkv ${i}`).toBeLessThan(1e-4);
        expect(relErr(concat(per(`${b}ffn_gate.weight`), per(`${b}ffn_up.weight`)), hf(`${p}mlp.gate_up_proj.weight`)), `gate_up ${i}`).toBeLessThan(1e-4);
        for (const [ours, theirs] of [['attn_output', 'self_attn.o_proj'], ['ffn_down', 'mlp.down_proj'], ['attn_norm', 'input_layernorm'], ['ffn_norm', 'post_attention_layernorm']]) {
          expect(relErr(per(`${b}${ours}.weight`), hf(`${p}${theirs}.weight`)), `${ours} ${i} checkpoint ${checkpoint}`).toBeLessThan(1e-4);
        }
      }
    }
  });

  it('exports the adapter under PEFT\'s fused names (read back alike), and merges into a Phi-3 folder with the fused matrices', async () => {
    const fx = await readFixture(dir);
    const ids = [...fx.ids!.data] as number[];
    const work = mkdtempSync(join(tmpdir(), 'tunekit-phi3-'));
    try {
      const m = await loadModel(dir);
      withFixtureLora(m, fx);
      const adapted = await m.logits(ids.slice(0, 12));
      await savePeftAdapter(m, join(work, 'adapter'));
      const peft = await openSafetensors(join(work, 'adapter', 'adapter_model.safetensors'));
      expect(peft.names()).toContain('base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight');
      expect(peft.names()).toContain('base_model.model.model.layers.2.mlp.gate_up_proj.lora_A.weight');
      await peft.close();
      expect(JSON.parse(readFileSync(join(work, 'adapter', 'adapter_config.json'), 'utf8')).target_modules).toEqual(['down_proj', 'gate_up_proj', 'o_proj', 'qkv_proj']);
      const again = await loadModel(dir);
      await loadPeftAdapter(again, join(work, 'adapter'));
      expect(relErr((await again.logits(ids.slice(0, 12))).data, adapted.data)).toBeLessThan(1e-6);
      await saveMergedModel(m, join(work, 'merged'));
      const merged = await loadModel(join(work, 'merged'));
      expect(merged.config).toMatchObject({ architecture: 'Phi3ForCausalLM', fusedProjections: true, slidingWindow: 5 });
      expect(relErr((await merged.logits(ids.slice(0, 12))).data, adapted.data)).toBeLessThan(1e-5);
      const st = await openSafetensors(join(work, 'merged', 'model.safetensors'));
      expect(st.info('model.layers.1.self_attn.qkv_proj.weight').shape).toEqual([128, 64]);
      expect(st.info('model.layers.1.mlp.gate_up_proj.weight').shape).toEqual([160, 64]);
      await st.close();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

// test/reference/make_tiny_phi4_mini.py: partial_rotary_factor 0.75 and longrope with an original
// context of 8, so a 6-token forward takes the short factors and a 12-token one the long ones.
describe('Phi-4-mini\'s partial rotary and longrope', () => {
  const mini = fileURLToPath(new URL('./reference/fixtures/tiny-phi4-mini/', import.meta.url));
  it('gives transformers\' logits on both sides of the original context, and its greedy continuation across it', async () => {
    const fx = await readFixture(mini);
    const ids = [...fx.ids!.data] as number[];
    const m = await loadModel(mini);
    expect(m.config).toMatchObject({ rotaryDim: 12, ropeLongAfter: 8, tiedEmbeddings: true });
    expect(m.config.ropeAttentionFactor).toBeCloseTo(Math.sqrt(1 + Math.log(8) / Math.log(8)), 12);
    expect(relErr((await m.logits(ids.slice(0, 6))).data, fx.short_logits!.data)).toBeLessThan(1e-4);
    expect(relErr((await m.logits(ids.slice(0, 12))).data, fx.long_logits!.data)).toBeLessThan(1e-4);
    const steps = [];
    for await (const s of m.generate(ids.slice(0, 5), { maxTokens: 10 })) steps.push(s.tokenId);
    expect(steps).toEqual([...fx.greedy!.data]);

    // The GGUF: the rotated part as phi3.rope.dimension_count, the factors as tensors.
    const g = await loadModel(join(mini, 'tiny-phi4-mini.gguf'));
    expect(g.config).toMatchObject({ architecture: 'phi3', rotaryDim: 12, ropeLongAfter: 8 });
    expect(g.config.ropeFreqFactorsLong).toEqual(m.config.ropeFreqFactorsLong!.map(Math.fround)); // stored as f32
    expect(relErr((await g.logits(ids.slice(0, 6))).data, fx.short_logits!.data)).toBeLessThan(1e-4);
    expect(relErr((await g.logits(ids.slice(0, 12))).data, fx.long_logits!.data)).toBeLessThan(1e-4);
  });

  it('trains as transformers and PEFT do past the original context (full and LoRA gradients)', async () => {
    const fx = await readFixture(mini);
    const m = await loadModel(mini);
    await expectPeftLoraStep(m, fx, withFixtureLora(m, fx));
    const full = await loadModel(mini);
    full.enableFullTraining();
    const s = await full.trainStep(fixtureBatch(fx));
    expect(Math.abs(s.loss - fx.loss!.data[0]!)).toBeLessThan(1e-5);
    const g = full.fullTensors('grads');
    expect(relErr(perToken(g['token_embd.weight']!, s.tokens), fx['grad.model.embed_tokens.weight']!.data)).toBeLessThan(1e-4);
    const qkv = (i: number) => concat(...['attn_q', 'attn_k', 'attn_v'].map((p) => perToken(g[`blk.${i}.${p}.weight`]!, s.tokens)));
    for (const i of [0, 1]) expect(relErr(qkv(i), fx[`grad.model.layers.${i}.self_attn.qkv_proj.weight`]!.data), `qkv ${i}`).toBeLessThan(1e-4);
  });

  it('merges into a folder transformers reads with the same RoPE (partial_rotary_factor, longrope written back)', async () => {
    const fx = await readFixture(mini);
    const ids = [...fx.ids!.data] as number[];
    const work = mkdtempSync(join(tmpdir(), 'tunekit-phi4-'));
    try {
      const m = await loadModel(mini);
      withFixtureLora(m, fx);
      const adapted = await m.logits(ids.slice(0, 12));
      await saveMergedModel(m, join(work, 'merged'));
      const cfg = JSON.parse(readFileSync(join(work, 'merged', 'config.json'), 'utf8'));
      expect(cfg).toMatchObject({ partial_rotary_factor: 0.75, original_max_position_embeddings: 8, max_position_embeddings: 64, rope_scaling: { rope_type: 'longrope', factor: 8 } });
      const merged = await loadModel(join(work, 'merged'));
      expect(merged.config).toMatchObject({ rotaryDim: 12, ropeLongAfter: 8, ropeFreqFactorsLong: m.config.ropeFreqFactorsLong });
      expect(relErr((await merged.logits(ids.slice(0, 12))).data, adapted.data)).toBeLessThan(1e-5);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
