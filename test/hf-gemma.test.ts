// Gemma 2 and Gemma 3 against transformers: logits, greedy generation, PEFT's LoRA gradients and
// every weight's full fine-tuning gradient, from the Hugging Face folder and from the GGUF
// llama.cpp's converter would write; merged export. The fixtures (tiny random models,
// query_pre_attn_scalar 16 against head_dim 24, tied embeddings):
// - test/reference/make_tiny_gemma3.py: Gemma3ForCausalLM, five sliding-window layers of window 4
//   then a global one, their own RoPE bases, per-head q/k norms;
// - test/reference/make_tiny_gemma2.py: Gemma2ForCausalLM, sliding and global layers alternating,
//   attention scores soft-capped at 1 and logits at 5 (low enough that both bite).
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expectPeftLoraStep, fixtureBatch, readFixture, withFixtureLora } from './fixture.js';
import { perToken, relErr } from './reference.js';
import { loadModel, loadPeftAdapter, openSafetensors, saveMergedModel, savePeftAdapter, TunekitError } from '../lib/index.js';

interface Case {
  name: string;
  dir: string;
  gguf: string;
  layers: number;
  /** What loadModel reads from the folder, and from the GGUF. */
  folder: Record<string, unknown>;
  file: Record<string, unknown>;
  /** Per layer: 7 projections and the norms. */
  layerWeights: number;
}
const fixtureDir = (name: string) => fileURLToPath(new URL(`./reference/fixtures/${name}/`, import.meta.url));
const CASES: Case[] = [
  {
    name: 'Gemma 3', dir: fixtureDir('tiny-gemma3'), gguf: join(fixtureDir('tiny-gemma3'), 'tiny-gemma3.gguf'), layers: 6, layerWeights: 13,
    folder: {
      architecture: 'Gemma3ForCausalLM', headDim: 24, qkNorm: true, postNorms: true, activation: 'gelu_tanh', tiedEmbeddings: true,
      interleavedRope: false, queryPreAttnScalar: 16, ropeTheta: 1e6, ropeThetaLocal: 1e4, layerWindows: [4, 4, 4, 4, 4, 0],
    },
    file: { architecture: 'gemma3', queryPreAttnScalar: 24, layerWindows: [4, 4, 4, 4, 4, 0], ropeThetaLocal: 1e4 },
  },
  {
    name: 'Gemma 2', dir: fixtureDir('tiny-gemma2'), gguf: join(fixtureDir('tiny-gemma2'), 'tiny-gemma2.gguf'), layers: 4, layerWeights: 11,
    folder: {
      architecture: 'Gemma2ForCausalLM', headDim: 24, qkNorm: false, postNorms: true, activation: 'gelu_tanh', tiedEmbeddings: true,
      interleavedRope: false, queryPreAttnScalar: 16, ropeTheta: 1e4, layerWindows: [4, 0, 4, 0], attnSoftcap: 1, logitSoftcap: 5,
    },
    file: { architecture: 'gemma2', queryPreAttnScalar: 24, layerWindows: [4, 0, 4, 0], attnSoftcap: 1, logitSoftcap: 5 },
  },
];


// The engine's names -> transformers' (Gemma's four norms per layer).
const HF_LAYER: Record<string, string> = {
  attn_norm: 'input_layernorm', post_attention_norm: 'post_attention_layernorm', ffn_norm: 'pre_feedforward_layernorm',
  post_ffw_norm: 'post_feedforward_layernorm', attn_q_norm: 'self_attn.q_norm', attn_k_norm: 'self_attn.k_norm',
  attn_q: 'self_attn.q_proj', attn_k: 'self_attn.k_proj', attn_v: 'self_attn.v_proj', attn_output: 'self_attn.o_proj',
  ffn_gate: 'mlp.gate_proj', ffn_up: 'mlp.up_proj', ffn_down: 'mlp.down_proj',
};
function hfName(n: string): string {
  if (n === 'token_embd.weight') return 'model.embed_tokens.weight';
  if (n === 'output_norm.weight') return 'model.norm.weight';
  const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(n)!;
  return `model.layers.${m[1]}.${HF_LAYER[m[2]!]}.weight`;
}

describe.each(CASES)('$name', ({ dir, gguf, layers, layerWeights, folder, file }) => {
  it('from the Hugging Face folder gives transformers\' logits and greedy continuation; from its GGUF, llama.cpp\'s reading of it', async () => {
    const fx = await readFixture(dir);
    const ids = [...fx.ids!.data] as number[];
    const m = await loadModel(dir);
    expect(m.config).toMatchObject(folder);
    if (!('ropeThetaLocal' in folder)) expect(m.config.ropeThetaLocal).toBeUndefined();
    expect(m.config.embedScale).toBeCloseTo(Math.sqrt(48), 12);
    expect(relErr((await m.logits(ids.slice(0, 12))).data, fx.logits!.data)).toBeLessThan(1e-4);
    expect(relErr((await m.logits(ids.slice(12))).data, fx.logits1!.data)).toBeLessThan(1e-4);
    const steps = [];
    for await (const s of m.generate(ids.slice(0, 5), { maxTokens: 10 })) steps.push(s.tokenId);
    expect(steps).toEqual([...fx.greedy!.data]);

    const g = await loadModel(gguf);
    expect(g.config).toMatchObject(file);
    expect(relErr((await g.logits(ids.slice(0, 12))).data, fx.gguf_logits!.data)).toBeLessThan(1e-4);
    expect(relErr((await g.logits(ids.slice(12))).data, fx.gguf_logits1!.data)).toBeLessThan(1e-4);
  });

  it('trains LoRA on all seven projections as PEFT, and gives every weight (all four norms per layer) the gradient transformers gives', async () => {
    const fx = await readFixture(dir);
    const m = await loadModel(dir);
    const names = withFixtureLora(m, fx);
    expect(names).toHaveLength(layers * 7 * 2);
    await expectPeftLoraStep(m, fx, names);

    for (const checkpoint of [false, true]) {
      const full = await loadModel(dir);
      full.enableFullTraining();
      const weights = Object.keys(full.fullTensors());
      expect(weights).toContain(`blk.${layers - 1}.post_ffw_norm.weight`);
      expect(weights).toHaveLength(2 + layers * layerWeights); // embedding (tied head), final norm; per layer 7 projections and the norms
      const s = await full.trainStep(fixtureBatch(fx), { checkpoint });
      expect(Math.abs(s.loss - fx.loss!.data[0]!)).toBeLessThan(1e-5);
      const grad = full.fullTensors('grads');
      for (const n of weights) expect(relErr(perToken(grad[n]!, s.tokens), fx[`grad.${hfName(n)}`]!.data), `${n} checkpoint ${checkpoint}`).toBeLessThan(1e-4);
    }
  });

  it('merges LoRA into a Hugging Face folder (norms back to w, Gemma\'s config) that loads with the adapted logits, from the folder and from the GGUF', async () => {
    const fx = await readFixture(dir);
    const ids = [...fx.ids!.data] as number[];
    const work = mkdtempSync(join(tmpdir(), 'tunekit-gemma-'));
    try {
      for (const source of [dir, gguf]) {
        const m = await loadModel(source);
        withFixtureLora(m, fx);
        const adapted = await m.logits(ids.slice(0, 12));
        const out = join(work, source === dir ? 'from-folder' : 'from-gguf');
        await saveMergedModel(m, out);
        const merged = await loadModel(out);
        expect(merged.config).toMatchObject({
          architecture: folder.architecture, layerWindows: folder.layerWindows, queryPreAttnScalar: m.config.queryPreAttnScalar,
        });
        expect([merged.config.attnSoftcap, merged.config.logitSoftcap]).toEqual([m.config.attnSoftcap, m.config.logitSoftcap]);
        // transformers' config class takes only floats for the caps (5.0, never 5).
        if (m.config.logitSoftcap) expect(readFileSync(join(out, 'config.json'), 'utf8')).toContain(`"final_logit_softcapping": ${m.config.logitSoftcap}.0`);
        expect(relErr((await merged.logits(ids.slice(0, 12))).data, adapted.data), source).toBeLessThan(1e-5);
        const base = await openSafetensors(join(out, 'model.safetensors'));
        const norm = await base.read('model.layers.0.input_layernorm.weight');
        await base.close();
        const original = await openSafetensors(join(dir, 'model.safetensors'));
        expect(relErr(norm.data as Float32Array, (await original.read('model.layers.0.input_layernorm.weight')).data as Float32Array)).toBeLessThan(1e-6);
        await original.close();
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

});

function editedFolders(dir: string, work: string) {
  const base = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  return (name: string, edit: (c: Record<string, unknown>) => void) => {
    const out = join(work, name), cfg = structuredClone(base);
    edit(cfg);
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out);
    writeFileSync(join(out, 'config.json'), JSON.stringify(cfg));
    copyFileSync(join(dir, 'model.safetensors'), join(out, 'model.safetensors'));
    return out;
  };
}

describe('Gemma 3 config', () => {
  const dir = CASES[0]!.dir;
  it('reads transformers 4\'s spelling of the config (rope_local_base_freq, sliding_window_pattern) alike, and refuses what it does not run, by name', async () => {
    const fx = await readFixture(dir);
    const ids = [...fx.ids!.data] as number[];
    const work = mkdtempSync(join(tmpdir(), 'tunekit-gemma3-cfg-'));
    const folder = editedFolders(dir, work);
    try {
      const v4 = folder('v4', (c) => {
        delete c.rope_parameters, delete c.layer_types;
        Object.assign(c, { rope_theta: 1e6, rope_local_base_freq: 1e4, sliding_window_pattern: 6, rope_scaling: null });
      });
      const m = await loadModel(v4);
      expect(m.config).toMatchObject({ layerWindows: [4, 4, 4, 4, 4, 0], ropeTheta: 1e6, ropeThetaLocal: 1e4 });
      expect(relErr((await m.logits(ids.slice(0, 12))).data, fx.logits!.data)).toBeLessThan(1e-4);
      // Soft-capping, which no released Gemma 3 sets, is honored where a config does (as transformers does).
      expect((await loadModel(folder('capped', (c) => (c.final_logit_softcapping = 30)))).config.logitSoftcap).toBe(30);
      const refusals: [string, (c: Record<string, unknown>) => void, string][] = [
        ['multimodal', (c) => (c.architectures = ['Gemma3ForConditionalGeneration']), 'expected a text_config object in a Gemma3ForConditionalGeneration config'],
        ['badcap', (c) => (c.attn_logit_softcapping = -1), 'expected a positive number attn_logit_softcapping but found -1'],
        ['bidirectional', (c) => (c.use_bidirectional_attention = true), 'use_bidirectional_attention (EmbeddingGemma) is not supported'],
        ['act', (c) => (c.hidden_activation = 'relu'), 'hidden_activation "relu" is not supported yet'],
        ['types', (c) => (c.layer_types = ['sliding_attention']), 'expected layer_types to be 6 entries'],
      ];
      for (const [name, edit, message] of refusals) {
        const err = await loadModel(folder(name, edit)).catch((e: unknown) => e);
        expect(err, name).toBeInstanceOf(TunekitError);
        expect((err as Error).message, name).toContain(message);
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

describe('Gemma 2 config', () => {
  const dir = CASES[1]!.dir;
  it('reads transformers 4\'s spelling alike; a cap absent is the config class\'s default (50, 30), a cap null none', async () => {
    const fx = await readFixture(dir);
    const ids = [...fx.ids!.data] as number[];
    const work = mkdtempSync(join(tmpdir(), 'tunekit-gemma2-cfg-'));
    const folder = editedFolders(dir, work);
    try {
      const v4 = await loadModel(folder('v4', (c) => {
        delete c.rope_parameters, delete c.layer_types;
        c.rope_theta = 1e4;
      }));
      expect(v4.config).toMatchObject({ layerWindows: [4, 0, 4, 0], ropeTheta: 1e4, attnSoftcap: 1, logitSoftcap: 5 });
      expect(relErr((await v4.logits(ids.slice(0, 12))).data, fx.logits!.data)).toBeLessThan(1e-4);
      const defaults = await loadModel(folder('defaults', (c) => {
        delete c.attn_logit_softcapping, delete c.final_logit_softcapping;
      }));
      expect(defaults.config).toMatchObject({ attnSoftcap: 50, logitSoftcap: 30 });
      const off = await loadModel(folder('off', (c) => {
        c.attn_logit_softcapping = null, c.final_logit_softcapping = null;
      }));
      expect(off.config.attnSoftcap ?? 0).toBe(0);
      expect(off.config.logitSoftcap ?? 0).toBe(0);
      expect(relErr((await off.logits(ids.slice(0, 12))).data, fx.logits!.data)).toBeGreaterThan(0.05); // the caps matter here
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

// test/reference/make_tiny_gemma3_mm.py: Gemma3ForConditionalGeneration (a tiny vision tower
// beside a 3-layer language model), whose language model tunekit loads.
describe('Gemma 3 with its vision tower (the 4B+ folders)', () => {
  const mm = fixtureDir('tiny-gemma3-mm');
  it('loads the language model: transformers\' text-only logits, greedy continuation and PEFT\'s LoRA gradients; PEFT export names its layers', async () => {
    const fx = await readFixture(mm);
    const ids = [...fx.ids!.data] as number[];
    const m = await loadModel(mm);
    expect(m.config).toMatchObject({ architecture: 'Gemma3ForConditionalGeneration', layers: 3, qkNorm: true, layerWindows: [4, 4, 0], ropeThetaLocal: 1e4, tiedEmbeddings: true });
    expect(relErr((await m.logits(ids.slice(0, 12))).data, fx.logits!.data)).toBeLessThan(1e-4);
    expect(relErr((await m.logits(ids.slice(12))).data, fx.logits1!.data)).toBeLessThan(1e-4);
    const steps = [];
    for await (const s of m.generate(ids.slice(0, 5), { maxTokens: 10 })) steps.push(s.tokenId);
    expect(steps).toEqual([...fx.greedy!.data]);
    await expectPeftLoraStep(m, fx, withFixtureLora(m, fx));
    const work = mkdtempSync(join(tmpdir(), 'tunekit-gemma3-mm-'));
    try {
      await savePeftAdapter(m, join(work, 'adapter'));
      const cfg = JSON.parse(readFileSync(join(work, 'adapter', 'adapter_config.json'), 'utf8'));
      expect(cfg.target_modules).toBe('.*language_model.*\\.(down_proj|gate_proj|k_proj|o_proj|q_proj|up_proj|v_proj)');
      const st = await openSafetensors(join(work, 'adapter', 'adapter_model.safetensors'));
      expect(st.names()).toContain('base_model.model.model.language_model.layers.2.self_attn.q_proj.lora_A.weight');
      await st.close();
      const again = await loadModel(mm);
      await loadPeftAdapter(again, join(work, 'adapter'));
      expect(relErr((await again.logits(ids.slice(0, 12))).data, (await m.logits(ids.slice(0, 12))).data)).toBeLessThan(1e-6);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
