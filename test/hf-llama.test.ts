// A Hugging Face folder (tiny random Llama from test/reference/make_tiny_llama.py: hidden 40,
// 5 heads, 1 KV head, vocabulary 1001): logits against transformers, the LoRA step (all seven
// projections, q/k included) against PEFT, NF4/bf16 quantization at load, and bad folders.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { perToken, relErr } from './reference.js';
import { loadModel, openGguf, openSafetensors, saveMergedModel, Tensor, TunekitError, writeGguf, writeSafetensors, type Model } from '../lib/index.js';
import { readFixture } from './fixture.js';

const dir = fileURLToPath(new URL('./reference/fixtures/tiny-llama/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'tunekit-hf-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function expected() {
  const r = await openSafetensors(join(dir, 'expected.safetensors'));
  const all: Record<string, Tensor> = {};
  for (const n of r.names()) all[n] = await r.read(n);
  await r.close();
  return all;
}


describe('Hugging Face Llama folder', () => {
  it('gives transformers logits (fp32 < 1e-4, bf16 < 2e-2, NF4 close)', async () => {
    const fx = await expected();
    const ids = [...fx.ids!.data] as number[];
    const m = await loadModel(dir);
    expect(m.config).toMatchObject({ dim: 40, heads: 5, kvHeads: 1, vocab: 1001, headDim: 8, tiedEmbeddings: false, interleavedRope: false });
    expect(m.tokenizer).toBeNull();
    const first = await m.logits(ids.slice(0, 12)), second = await m.logits(ids.slice(12));
    expect(relErr(first.data, fx.logits!.data)).toBeLessThan(1e-4);
    expect(relErr(second.data, fx.logits1!.data)).toBeLessThan(1e-4);
    const bf16 = await loadModel(dir, { quantize: 'bf16' });
    expect(relErr((await bf16.logits(ids.slice(0, 12))).data, fx.logits!.data)).toBeLessThan(2e-2);
    const nf4 = await loadModel(dir, { quantize: 'nf4' });
    expect(relErr((await nf4.logits(ids.slice(0, 12))).data, fx.logits!.data)).toBeLessThan(0.25);
  });

  it('gives the full forward\'s logits through a KV cache longer than one key tile (300 keys)', async () => {
    // Attention takes keys in tiles of 256 with an online softmax; a cached decode's queries start at
    // an offset, and the full forward's 300 tokens are themselves checked against fp64 in ops.test.ts.
    const m = await loadModel(dir);
    const n = 300, ids = Array.from({ length: n }, (_, i) => (i * 7919 + 13) % 1001);
    const full = await m.logits(ids);
    const session = m.native.createSession(n);
    await session.decode(Tensor.from('i32', [280], ids.slice(0, 280)).handle);
    const last = new Tensor(await session.decode(Tensor.from('i32', [20], ids.slice(280)).handle)).data as Float32Array;
    expect(relErr(last, full.data.subarray((n - 1) * 1001))).toBeLessThan(1e-5);
  });

  it('trains LoRA on all seven projections exactly as PEFT', async () => {
    const fx = await expected();
    const m = await loadModel(dir);
    m.addLora({ r: 3, alpha: 6 });
    const names = Object.keys(m.loraTensors());
    expect(names).toHaveLength(2 * 7 * 2);
    m.setLoraTensors(Object.fromEntries(names.map((n) => [n, fx[n] as Tensor<'f32'>])));
    const ids = [...fx.ids!.data] as number[], labels = [...fx.labels!.data] as number[];
    const step = await m.trainStep({ inputIds: [ids.slice(0, 12), ids.slice(12)], labels: [labels.slice(0, 12), labels.slice(12)] });
    expect(Math.abs(step.loss - fx.loss!.data[0]!)).toBeLessThan(1e-5);
    const grads = m.loraTensors('grads');
    for (const n of names) expect(relErr(perToken(grads[n]!, step.tokens), fx[`${n}.grad`]!.data), n).toBeLessThan(1e-4);
  });

  it('trains in bf16 with the frozen weights kept packed as with them packed in every product', async () => {
    const fx = await expected();
    const ids = [...fx.ids!.data] as number[], labels = [...fx.labels!.data] as number[];
    const batch = { inputIds: [ids.slice(0, 12), ids.slice(12)], labels: [labels.slice(0, 12), labels.slice(12)] };
    const run = async (bf16WeightCache: boolean) => {
      const m = await loadModel(dir, { bf16WeightCache });
      m.addLora({ r: 3, alpha: 6 });
      m.setLoraTensors(Object.fromEntries(Object.keys(m.loraTensors()).map((n) => [n, fx[n] as Tensor<'f32'>])));
      const evaluated = await m.evaluate(batch, { bf16: true });
      const step = await m.trainStep(batch, { bf16: true });
      return { evaluated, step, grads: m.loraTensors('grads') };
    };
    const kept = await run(true), packedEachTime = await run(false);
    expect(Math.abs(kept.evaluated.loss - packedEachTime.evaluated.loss)).toBeLessThan(1e-6);
    expect(Math.abs(kept.step.loss - packedEachTime.step.loss)).toBeLessThan(1e-6);
    for (const [n, g] of Object.entries(kept.grads)) {
      expect(relErr(g.data, packedEachTime.grads[n]!.data), n).toBeLessThan(1e-5);
      expect(relErr(perToken(g, kept.step.tokens), fx[`${n}.grad`]!.data), `${n} vs PEFT`).toBeLessThan(2e-2);
    }
  });

  it('names what is wrong with a folder', async () => {
    const bad = join(work, 'gpt2');
    rmSync(bad, { recursive: true, force: true });
    (await import('node:fs')).mkdirSync(bad);
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ architectures: ['GPT2LMHeadModel'] }));
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ architectures: ['BertModel'] }));
    await expect(loadModel(bad)).rejects.toThrow(/architecture BertModel is not supported yet/);
    const missing = join(work, 'missing');
    (await import('node:fs')).mkdirSync(missing, { recursive: true });
    copyFileSync(join(dir, 'config.json'), join(missing, 'config.json'));
    await writeSafetensors(join(missing, 'model.safetensors'), { 'model.embed_tokens.weight': Tensor.zeros('f32', [1001, 40]) });
    await expect(loadModel(missing)).rejects.toThrow(/config\.json: num_hidden_layers is 2 but .* holds the tensors of 0 layers/);
    // The fixture's tensors less the final norm, then with an embedding of the wrong shape.
    const src = await openSafetensors(join(dir, 'model.safetensors'));
    const all: Record<string, Tensor> = {};
    for (const name of src.names()) all[name] = await src.read(name);
    await src.close();
    const { ['model.norm.weight']: _norm, ...noNorm } = all;
    await writeSafetensors(join(missing, 'model.safetensors'), noNorm);
    const err = await loadModel(missing).catch((e) => e);
    expect(err).toBeInstanceOf(TunekitError);
    expect(err.message).toMatch(/missing tensor model\.norm\.weight/);
    await writeSafetensors(join(missing, 'model.safetensors'), { ...all, 'model.embed_tokens.weight': Tensor.zeros('f32', [1000, 40]) });
    await expect(loadModel(missing)).rejects.toThrow('tensor model.embed_tokens.weight has shape [1000, 40] but config.json implies [1001, 40]');
  });
});

describe('Hugging Face Qwen2 folder (q/k/v biases, tied embeddings)', () => {
  it('gives transformers logits', async () => {
    const q = fileURLToPath(new URL('./reference/fixtures/tiny-qwen2/', import.meta.url));
    const r = await openSafetensors(join(q, 'expected.safetensors'));
    const ids = [...(await r.read('ids')).data] as number[], logits = (await r.read('logits')).data;
    await r.close();
    const m = await loadModel(q);
    expect(m.config).toMatchObject({ architecture: 'Qwen2ForCausalLM', qkvBias: true, tiedEmbeddings: true, ropeTheta: 1000000 });
    expect(relErr((await m.logits(ids)).data, logits)).toBeLessThan(1e-4);
    m.addLora({ r: 2 });
    const step = await m.trainStep({ inputIds: [ids], labels: [ids] });
    expect(Number.isFinite(step.loss) && step.gradNorm > 0).toBe(true);
  });

  it('loads the same model from GGUF (architecture qwen2, as llama.cpp names it: no q/k permutation, biases)', async () => {
    const q = fileURLToPath(new URL('./reference/fixtures/tiny-qwen2/', import.meta.url));
    const r = await openSafetensors(join(q, 'expected.safetensors'));
    const ids = [...(await r.read('ids')).data] as number[], logits = (await r.read('logits')).data;
    await r.close();
    const m = await loadModel(join(q, 'tiny-qwen2.gguf'));
    expect(m.config).toMatchObject({ architecture: 'qwen2', qkvBias: true, tiedEmbeddings: true, interleavedRope: false, ropeTheta: 1000000 });
    expect(m.tokenizer).toBeNull();
    expect(relErr((await m.logits(ids)).data, logits)).toBeLessThan(1e-4);
  });

  it('loads a GGUF split in parts by gguf-split from its first part, and says what is wrong with a broken set', async () => {
    const q = fileURLToPath(new URL('./reference/fixtures/tiny-qwen2/', import.meta.url));
    const r = await openSafetensors(join(q, 'expected.safetensors'));
    const ids = [...(await r.read('ids')).data] as number[], logits = (await r.read('logits')).data;
    await r.close();
    const part = (i: number) => `tiny-qwen2-0000${i}-of-00003.gguf`;
    const whole = await openGguf(join(q, 'tiny-qwen2.gguf')), split = await openGguf(join(q, 'split', part(1)));
    expect([...split.tensors.keys()].sort()).toEqual([...whole.tensors.keys()].sort());
    for (const n of whole.tensors.keys()) expect(Buffer.from(((await split.read(n)) as Tensor).bytes).equals(Buffer.from(((await whole.read(n)) as Tensor).bytes)), n).toBe(true);
    await Promise.all([whole.close(), split.close()]);
    const m = await loadModel(join(q, 'split', part(1)));
    expect(relErr((await m.logits(ids)).data, logits)).toBeLessThan(1e-4);
    const dir = mkdtempSync(join(tmpdir(), 'tunekit-split-'));
    await expect(loadModel(join(q, 'split', part(2)))).rejects.toThrow(/tiny-qwen2-00002-of-00003.gguf is part 2 of a 3-part GGUF: load the first part, .*tiny-qwen2-00001-of-00003.gguf/);
    copyFileSync(join(q, 'split', part(1)), join(dir, part(1)));
    copyFileSync(join(q, 'split', part(3)), join(dir, part(3)));
    await expect(loadModel(join(dir, part(1)))).rejects.toThrow(/tiny-qwen2-00001-of-00003.gguf needs part 2 of 3 beside it: .*tiny-qwen2-00002-of-00003.gguf: ENOENT/);
    copyFileSync(join(q, 'split', part(3)), join(dir, part(2))); // the wrong part under part 2's name
    await expect(loadModel(join(dir, part(1)))).rejects.toThrow(/tiny-qwen2-00002-of-00003.gguf: expected split.no 1 and split.count 3 .* but found 2 and 3/);
    copyFileSync(join(q, 'split', part(1)), join(dir, 'renamed.gguf'));
    await expect(loadModel(join(dir, 'renamed.gguf'))).rejects.toThrow(/split.count says this is one of 3 parts, but the name does not end in -NNNNN-of-00003.gguf/);
    rmSync(dir, { recursive: true, force: true });
  });
});

/** make_tiny_yarn / make_tiny_dynamic's PEFT step (r 2, alpha 4 on q and v, one row of their ids): loss within 1e-5, gradients within 1e-4. */
async function expectQvLoraStep(m: Model, fx: Record<string, Tensor>, ids: number[]): Promise<void> {
  m.addLora({ r: 2, alpha: 4, targets: ['q_proj', 'v_proj'] });
  const names = Object.keys(m.loraTensors());
  m.setLoraTensors(Object.fromEntries(names.map((n) => [n, fx[n] as Tensor<'f32'>])));
  const step = await m.trainStep({ inputIds: [ids], labels: [ids] });
  expect(Math.abs(step.loss - fx.loss!.data[0]!)).toBeLessThan(1e-5);
  const grads = m.loraTensors('grads');
  for (const n of names) expect(relErr(perToken(grads[n]!, step.tokens), fx[`${n}.grad`]!.data), n).toBeLessThan(1e-4);
}

describe('YaRN RoPE scaling (Qwen2.5\'s long context)', () => {
  const dir = fileURLToPath(new URL('./reference/fixtures/tiny-yarn/', import.meta.url));

  it('gives transformers\' logits at 24 positions (original context 8, factor 4, attention factor 1.139) and PEFT\'s LoRA gradients', async () => {
    const fx = await readFixture(dir);
    const ids = [...fx.ids!.data] as number[];
    const m = await loadModel(dir);
    expect(m.config.ropeAttentionFactor).toBeCloseTo(0.1 * Math.log(4) + 1, 12);
    const f = m.config.ropeFreqFactors!;
    expect(f[0]).toBe(1); // extrapolated: kept
    expect(f.at(-1)).toBeCloseTo(4, 6); // interpolated: divided by the factor
    expect(relErr((await m.logits(ids)).data, fx.logits!.data)).toBeLessThan(1e-4);
    await expectQvLoraStep(m, fx, ids);
    // The cached decode applies the factor to the new queries alone: same next-token logits.
    const session = [];
    for await (const s of m.generate(ids.slice(0, 20), { maxTokens: 1 })) session.push(s.tokenId);
    const last = (await m.logits(ids.slice(0, 20))).data.subarray(19 * 128, 20 * 128);
    expect(session[0]).toBe(last.indexOf(Math.max(...last)));
  });
});

describe('YaRN from a GGUF file (rope.scaling.type "yarn", as llama.cpp computes it)', () => {
  const dir = fileURLToPath(new URL('./reference/fixtures/tiny-yarn/', import.meta.url));
  const gguf = join(dir, 'tiny-yarn.gguf');

  it('reads the file as transformers reads the folder: the same divisors, attention factor and logits', async () => {
    const r = await openSafetensors(join(dir, 'expected.safetensors'));
    const ids = [...(await r.read('ids')).data] as number[], logits = (await r.read('logits')).data as Float32Array;
    await r.close();
    const [m, folder] = [await loadModel(gguf), await loadModel(dir)];
    expect(m.config.ropeFreqFactors).toEqual(folder.config.ropeFreqFactors);
    expect(m.config.ropeAttentionFactor).toBe(folder.config.ropeAttentionFactor);
    expect(relErr((await m.logits(ids)).data, logits)).toBeLessThan(1e-4);
    // The Hugging Face parameters go back into a merged folder, which reloads as the same model.
    const out = mkdtempSync(join(tmpdir(), 'tunekit-yarn-'));
    await saveMergedModel(m, out);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(cfg.rope_scaling).toMatchObject({ rope_type: 'yarn', factor: 4, original_max_position_embeddings: 8 });
    expect(cfg.max_position_embeddings).toBe(32); // the file's context_length
    expect(relErr((await (await loadModel(out)).logits(ids)).data, logits)).toBeLessThan(1e-4);
    rmSync(out, { recursive: true, force: true });
  });

  it('reads the converter\'s yarn_beta_fast / yarn_beta_slow / yarn_attn_factor keys as the config they were copied from', async () => {
    const { ggufRopeScaling, hfRopeAttentionFactor, hfRopeFactors } = await import('../lib/model/rope-scaling.js');
    const hf = { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 4096, beta_fast: 16, beta_slow: 2, attention_factor: 1.5 };
    const g = ggufRopeScaling({ type: 'yarn', factor: 4, original: 4096, betaFast: 16, betaSlow: 2, yarnAttnFactor: 1.5 }, undefined, 16, 10000, 'x.gguf');
    expect(g.factors).toEqual(hfRopeFactors(hf, 16, 10000, 'config.json'));
    expect(g.factors).not.toEqual(hfRopeFactors({ ...hf, beta_fast: 32, beta_slow: 1 }, 16, 10000, 'config.json'));
    expect(g.attention).toBe(hfRopeAttentionFactor(hf, 16, 10000, 'config.json'));
    expect(g.hf).toEqual(hf);
  });

  it('refuses what llama.cpp would compute otherwise, by key', async () => {
    // A one-layer qwen2 header: loading stops at the scaling, before any weight is read.
    const dirOut = mkdtempSync(join(tmpdir(), 'tunekit-yarn-')), bad = join(dirOut, 'bad.gguf');
    const u32 = (value: number) => ({ type: 'u32', value }) as const, f32 = (value: number) => ({ type: 'f32', value }) as const;
    const base = {
      'general.architecture': { type: 'string', value: 'qwen2' }, 'qwen2.block_count': u32(1), 'qwen2.embedding_length': u32(8), 'qwen2.feed_forward_length': u32(8),
      'qwen2.attention.head_count': u32(2), 'qwen2.vocab_size': u32(16), 'qwen2.context_length': u32(32),
      'qwen2.rope.scaling.type': { type: 'string', value: 'yarn' }, 'qwen2.rope.scaling.factor': f32(4), 'qwen2.rope.scaling.original_context_length': u32(8),
    } as const;
    for (const [extra, message] of [
      [{ 'qwen2.rope.scaling.yarn_ext_factor': f32(0.5) }, /bad.gguf: YaRN with rope.scaling.yarn_ext_factor 0.5 is not supported yet/],
      [{ 'qwen2.rope.scaling.yarn_log_multiplier': f32(0.25) }, /YaRN with rope.scaling.yarn_log_multiplier 0.25 \(DeepSeek's mscale_all_dim\) is not supported yet/],
      [{ 'qwen2.rope.scaling.factor': f32(-1) }, /"yarn" RoPE scaling needs metadata rope.scaling.factor to be a positive number but it is -1/],
      [{ 'qwen2.rope.scaling.type': { type: 'string', value: 'longrope2' } }, /RoPE scaling "longrope2" is not supported yet/],
    ] as const) {
      await writeGguf(bad, { ...base, ...extra }, { 'blk.0.attn_norm.weight': Tensor.from('f32', [8], new Float32Array(8).fill(1)) });
      await expect(loadModel(bad), JSON.stringify(extra)).rejects.toThrow(message);
    }
    rmSync(dirOut, { recursive: true, force: true });
  });
});

describe('Dynamic NTK RoPE scaling ("dynamic")', () => {
  const dir = fileURLToPath(new URL('./reference/fixtures/tiny-dynamic/', import.meta.url));

  it('gives transformers\' logits past max_position_embeddings and plain RoPE below it, its greedy continuation through the cache, and PEFT\'s LoRA gradients', async () => {
    const fx = await readFixture(dir);
    const ids = [...fx.ids!.data] as number[];
    const m = await loadModel(dir);
    expect(m.config).toMatchObject({ ropeDynamicFactor: 2, ropeDynamicAfter: 8 });
    expect(relErr((await m.logits(ids)).data, fx.logits!.data)).toBeLessThan(1e-4);
    expect(relErr((await m.logits(ids.slice(0, 6))).data, fx.short_logits!.data)).toBeLessThan(1e-4);
    const greedy: number[] = [];
    for await (const s of m.generate(ids.slice(0, 4), { maxTokens: 12, temperature: 0 })) greedy.push(s.tokenId);
    expect(greedy).toEqual([...fx.greedy!.data]);
    await expectQvLoraStep(m, fx, ids);
    // A merged folder keeps the scaling and its threshold.
    const out = mkdtempSync(join(tmpdir(), 'tunekit-dynamic-'));
    await saveMergedModel(m, out);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ rope_scaling: { rope_type: 'dynamic', factor: 2 }, max_position_embeddings: 8 });
    rmSync(out, { recursive: true, force: true });
  });
});

describe('Llama 3.x RoPE scaling ("llama3")', () => {
  const l3 = fileURLToPath(new URL('./reference/fixtures/tiny-llama3/', import.meta.url));
  async function expected() {
    const r = await openSafetensors(join(l3, 'expected.safetensors'));
    const ids = [...(await r.read('ids')).data] as number[], logits = (await r.read('logits')).data;
    await r.close();
    return { ids, logits };
  }

  it('from a Hugging Face folder gives transformers\' logits (every branch of the rule taken at 24 positions)', async () => {
    const { ids, logits } = await expected();
    const m = await loadModel(l3);
    const f = m.config.ropeFreqFactors!;
    expect(f).toHaveLength(8);
    expect(f[0]! > 1 && f[0]! < 8).toBe(true); // smoothed
    expect(f.slice(1).every((x) => x === 8)).toBe(true); // long wavelengths: divided by the factor
    expect(relErr((await m.logits(ids)).data, logits)).toBeLessThan(1e-4);
    // The training step's forward scales too: its loss is the cross-entropy of transformers' logits.
    const V = 128;
    let ce = 0;
    for (let t = 0; t + 1 < ids.length; t++) {
      const row = logits.subarray(t * V, (t + 1) * V), max = Math.max(...row);
      ce += Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0)) + max - row[ids[t + 1]!]!;
    }
    expect(Math.abs((await m.evaluate({ inputIds: [ids], labels: [ids] })).loss - ce / (ids.length - 1))).toBeLessThan(1e-4);
    // Without the scaling the logits differ: the test sees it.
    const cfg = JSON.parse(readFileSync(join(l3, 'config.json'), 'utf8'));
    const plain = mkdtempSync(join(tmpdir(), 'tunekit-l3-'));
    for (const f of ['model.safetensors']) copyFileSync(join(l3, f), join(plain, f));
    writeFileSync(join(plain, 'config.json'), JSON.stringify({ ...cfg, rope_scaling: null, rope_parameters: { rope_type: 'default', rope_theta: 10000 } }));
    expect(relErr((await (await loadModel(plain)).logits(ids)).data, logits)).toBeGreaterThan(1e-3);
    rmSync(plain, { recursive: true, force: true });
  });

  it('from a GGUF written as llama.cpp writes Llama 3 (rope_freqs.weight) gives the same logits', async () => {
    const { ids, logits } = await expected();
    const m = await loadModel(join(l3, 'tiny-llama3.gguf'));
    expect(m.config.ropeFreqFactors).toHaveLength(8);
    expect(relErr((await m.logits(ids)).data, logits)).toBeLessThan(1e-4);
    // Its merged Hugging Face folder would need rope_scaling parameters the file does not hold.
    await expect(saveMergedModel(m, join(tmpdir(), 'never-written'))).rejects.toThrow(/RoPE scaling \(rope_freqs.weight\) into a Hugging Face folder is not supported/);
  });

  it('refuses the schemes it does not implement, by name', async () => {
    const cfg = JSON.parse(readFileSync(join(l3, 'config.json'), 'utf8'));
    const bad = mkdtempSync(join(tmpdir(), 'tunekit-l3-'));
    copyFileSync(join(l3, 'model.safetensors'), join(bad, 'model.safetensors'));
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...cfg, rope_scaling: { rope_type: 'ntk-mixed', factor: 4 }, rope_parameters: undefined }));
    await expect(loadModel(bad)).rejects.toThrow(/RoPE scaling "ntk-mixed" is not supported yet \(tunekit reads "llama3", "linear", "yarn", "dynamic" and "longrope"\)/);
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...cfg, rope_scaling: { rope_type: 'dynamic', factor: 4 }, rope_parameters: undefined, max_position_embeddings: undefined }));
    await expect(loadModel(bad)).rejects.toThrow(/rope_scaling "dynamic" needs max_position_embeddings \(a positive integer\)/);
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...cfg, rope_scaling: { rope_type: 'yarn', factor: 4 }, rope_parameters: undefined }));
    await expect(loadModel(bad)).rejects.toThrow(/rope_scaling "yarn" needs a positive number original_max_position_embeddings/);
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...cfg, rope_scaling: { rope_type: 'llama3', factor: 8 }, rope_parameters: undefined }));
    await expect(loadModel(bad)).rejects.toThrow(/rope_scaling "llama3" needs a positive number low_freq_factor/);
    rmSync(bad, { recursive: true, force: true });
  });
});

describe('Qwen3 (per-head q/k RMSNorm, explicit head_dim, tied embeddings)', () => {
  const q3 = fileURLToPath(new URL('./reference/fixtures/tiny-qwen3/', import.meta.url));
  const fixture = async () => {
    const r = await openSafetensors(join(q3, 'expected.safetensors'));
    const out: Record<string, Tensor> = {};
    for (const n of r.names()) out[n] = await r.read(n);
    await r.close();
    return out;
  };
  const batchOf = (fx: Record<string, Tensor>) => {
    const ids = [...fx.ids!.data] as number[], labels = [...fx.labels!.data] as number[];
    return { inputIds: [ids.slice(0, 12), ids.slice(12)], labels: [labels.slice(0, 12), labels.slice(12)] };
  };

  it('from a Hugging Face folder and from its GGUF gives transformers\' logits', async () => {
    const fx = await fixture();
    const ids = [...fx.ids!.data] as number[];
    for (const path of [q3, join(q3, 'tiny-qwen3.gguf')]) {
      const m = await loadModel(path);
      expect(m.config, path).toMatchObject({ headDim: 24, qkNorm: true, tiedEmbeddings: true, interleavedRope: false });
      expect(relErr((await m.logits(ids.slice(0, 12))).data, fx.logits!.data), path).toBeLessThan(1e-4);
      expect(relErr((await m.logits(ids.slice(12))).data, fx.logits1!.data), path).toBeLessThan(1e-4);
    }
  });

  it('trains LoRA on all seven projections as PEFT, and gives every weight (the q/k norms too) the gradient transformers gives', async () => {
    const fx = await fixture();
    const m = await loadModel(q3);
    m.addLora({ r: 3, alpha: 6 });
    const names = Object.keys(m.loraTensors());
    expect(names).toHaveLength(2 * 7 * 2);
    m.setLoraTensors(Object.fromEntries(names.map((n) => [n, fx[n] as Tensor<'f32'>])));
    const step = await m.trainStep(batchOf(fx));
    expect(Math.abs(step.loss - fx.lora_loss!.data[0]!)).toBeLessThan(1e-5);
    const grads = m.loraTensors('grads');
    for (const n of names) expect(relErr(perToken(grads[n]!, step.tokens), fx[`${n}.grad`]!.data), n).toBeLessThan(1e-4);

    const full = await loadModel(q3);
    full.enableFullTraining();
    const weights = Object.keys(full.fullTensors());
    expect(weights).toContain('blk.1.attn_k_norm.weight');
    expect(weights).toHaveLength(2 + 2 * 11); // embedding (tied head), final norm; per layer 7 projections and 4 norms
    const s = await full.trainStep(batchOf(fx));
    expect(Math.abs(s.loss - fx.loss!.data[0]!)).toBeLessThan(1e-5);
    const g = full.fullTensors('grads');
    const hf = (n: string) => n === 'token_embd.weight' ? 'model.embed_tokens.weight' : n === 'output_norm.weight' ? 'model.norm.weight'
      : n.replace(/^blk\.(\d+)\./, 'model.layers.$1.').replace('attn_q_norm', 'self_attn.q_norm').replace('attn_k_norm', 'self_attn.k_norm')
        .replace('attn_norm', 'input_layernorm').replace('ffn_norm', 'post_attention_layernorm').replace('attn_q', 'self_attn.q_proj')
        .replace('attn_k', 'self_attn.k_proj').replace('attn_v', 'self_attn.v_proj').replace('attn_output', 'self_attn.o_proj')
        .replace('ffn_gate', 'mlp.gate_proj').replace('ffn_up', 'mlp.up_proj').replace('ffn_down', 'mlp.down_proj');
    for (const n of weights) expect(relErr(perToken(g[n]!, s.tokens), fx[`grad.${hf(n)}`]!.data), n).toBeLessThan(1e-4);
  });
});

describe('full fine-tuning', () => {
  const HF: Record<string, string> = {
    'token_embd.weight': 'model.embed_tokens.weight', 'output_norm.weight': 'model.norm.weight', 'output.weight': 'lm_head.weight',
  };
  const PER_LAYER: Record<string, string> = {
    'attn_norm.weight': 'input_layernorm.weight', 'ffn_norm.weight': 'post_attention_layernorm.weight',
    'attn_q.weight': 'self_attn.q_proj.weight', 'attn_k.weight': 'self_attn.k_proj.weight', 'attn_v.weight': 'self_attn.v_proj.weight',
    'attn_output.weight': 'self_attn.o_proj.weight', 'ffn_gate.weight': 'mlp.gate_proj.weight', 'ffn_up.weight': 'mlp.up_proj.weight',
    'ffn_down.weight': 'mlp.down_proj.weight',
  };
  const hfName = (ours: string) => {
    const m = /^blk\.(\d+)\.(.+)$/.exec(ours);
    return m ? `model.layers.${m[1]}.${PER_LAYER[m[2]!]}` : HF[ours]!;
  };

  it('gives every weight the gradient transformers gives, and AdamW moves them', async () => {
    const r = await openSafetensors(join(dir, 'expected_full.safetensors'));
    const fx = await expected();
    const m = await loadModel(dir);
    const count = m.enableFullTraining();
    const names = Object.keys(m.fullTensors());
    expect(names).toHaveLength(3 + 2 * 9);
    expect(count).toBe(names.reduce((a, n) => a + m.fullTensors()[n]!.numel, 0));
    const ids = [...fx.ids!.data] as number[], labels = [...fx.labels!.data] as number[];
    const step = await m.trainStep({ inputIds: [ids.slice(0, 12), ids.slice(12)], labels: [labels.slice(0, 12), labels.slice(12)] });
    expect(Math.abs(step.loss - (await r.read('loss')).data[0]!)).toBeLessThan(1e-5);
    const grads = m.fullTensors('grads');
    for (const n of names) expect(relErr(perToken(grads[n]!, step.tokens), (await r.read(`grad.${hfName(n)}`)).data), n).toBeLessThan(1e-4);
    const before = m.fullTensors()['blk.0.attn_q.weight']!.data.slice();
    await m.optimizerStep({ lr: 1e-2 });
    const after = m.fullTensors()['blk.0.attn_q.weight']!.data;
    expect(after.some((v, i) => v !== before[i])).toBe(true);
    expect(Object.keys(m.loraTensors())).toHaveLength(0);
    const loss2 = (await m.trainStep({ inputIds: [ids.slice(0, 12), ids.slice(12)], labels: [labels.slice(0, 12), labels.slice(12)] })).loss;
    expect(loss2).toBeLessThan(step.loss);
    await r.close();
  });
});

describe('activation checkpointing', () => {
  it('recomputes layers in the backward and gives bit-identical gradients', async () => {
    const fx = await expected();
    const ids = [...fx.ids!.data] as number[], labels = [...fx.labels!.data] as number[];
    const batch = { inputIds: [ids.slice(0, 12), ids.slice(12)], labels: [labels.slice(0, 12), labels.slice(12)] };
    const grads = [];
    for (const checkpoint of [false, true]) {
      const m = await loadModel(dir);
      m.enableFullTraining();
      const step = await m.trainStep(batch, { checkpoint });
      grads.push({ loss: step.loss, g: m.fullTensors('grads') });
    }
    expect(grads[1]!.loss).toBe(grads[0]!.loss);
    for (const [name, t] of Object.entries(grads[0]!.g)) expect(Buffer.from(grads[1]!.g[name]!.bytes).equals(Buffer.from(t.bytes)), name).toBe(true);
  });
});

describe('Hugging Face GPT-2 folder', () => {
  it('gives transformers logits, and refuses sequences past its positions', async () => {
    const g = fileURLToPath(new URL('./reference/fixtures/tiny-gpt2/', import.meta.url));
    const r = await openSafetensors(join(g, 'expected.safetensors'));
    const ids = [...(await r.read('ids')).data] as number[], logits = (await r.read('logits')).data;
    await r.close();
    const m = await loadModel(g);
    expect(m.config).toMatchObject({ architecture: 'GPT2LMHeadModel', dim: 40, heads: 5, vocab: 1001 });
    expect(relErr((await m.logits(ids)).data, logits)).toBeLessThan(1e-4);
    await expect(m.logits(new Array(33).fill(1))).rejects.toThrow('Expected at most 32 tokens (the model\'s positions) but received 33');
  });

  it('trains LoRA on c_attn, c_proj and c_fc exactly as PEFT (Conv1D, fan_in_fan_out)', async () => {
    const g = fileURLToPath(new URL('./reference/fixtures/tiny-gpt2/', import.meta.url));
    const r = await openSafetensors(join(g, 'lora.safetensors'));
    const fx: Record<string, Tensor> = {};
    for (const n of r.names()) fx[n] = await r.read(n);
    await r.close();
    const m = await loadModel(g);
    m.addLora({ r: 3, alpha: 6 });
    const names = Object.keys(m.loraTensors());
    expect(names).toHaveLength(2 * 4 * 2);
    m.setLoraTensors(Object.fromEntries(names.map((n) => [n, fx[n] as Tensor<'f32'>])));
    const ids = [...fx.ids!.data] as number[], labels = [...fx.labels!.data] as number[];
    const batch = { inputIds: [ids.slice(0, 12), ids.slice(12)], labels: [labels.slice(0, 12), labels.slice(12)] };
    const e = await m.evaluate(batch);
    const step = await m.trainStep(batch);
    expect(e.loss).toBe(step.loss);
    expect(Math.abs(step.loss - fx.loss!.data[0]!)).toBeLessThan(1e-5);
    const grads = m.loraTensors('grads');
    for (const n of names) expect(relErr(perToken(grads[n]!, step.tokens), fx[`${n}.grad`]!.data), n).toBeLessThan(1e-4);
    await m.optimizerStep({ lr: 1e-2 });
    expect((await m.evaluate(batch)).loss).toBeLessThan(step.loss);
    expect(() => m.addLora({ targets: ['q_proj'] as never })).toThrow(/Expected one of "c_attn", "c_proj", "c_fc"|c_attn/);
  });

  it('full fine-tuning: the gradient of every weight equals transformers\'', async () => {
    const g = fileURLToPath(new URL('./reference/fixtures/tiny-gpt2/', import.meta.url));
    const fx: Record<string, Tensor> = {};
    for (const file of ['lora.safetensors', 'full.safetensors']) {
      const r = await openSafetensors(join(g, file));
      for (const n of r.names()) fx[n] = await r.read(n);
      await r.close();
    }
    const m = await loadModel(g);
    expect(m.enableFullTraining()).toBeGreaterThan(40_000);
    const ids = [...fx.ids!.data] as number[], labels = [...fx.labels!.data] as number[];
    const step = await m.trainStep({ inputIds: [ids.slice(0, 12), ids.slice(12)], labels: [labels.slice(0, 12), labels.slice(12)] });
    expect(Math.abs(step.loss - fx.full_loss!.data[0]!)).toBeLessThan(1e-5);
    const grads = m.fullTensors('grads');
    expect(Object.keys(grads)).toHaveLength(Object.keys(fx).filter((k) => k.startsWith('transformer.') && k.endsWith('.weight.grad') || k.endsWith('.bias.grad')).length);
    for (const [name, t] of Object.entries(grads)) expect(relErr(perToken(t, step.tokens), fx[`${name}.grad`]!.data), name).toBeLessThan(1e-4);
    await m.optimizerStep({ lr: 1e-3 });
    expect((await m.evaluate({ inputIds: [ids.slice(0, 12)], labels: [labels.slice(0, 12)] })).loss).toBeLessThan(step.loss + 1);
  });

  it('trains with the Trainer (checkpoints, resume state) and generates greedily with its adapters', async () => {
    const g = fileURLToPath(new URL('./reference/fixtures/tiny-gpt2/', import.meta.url));
    const folder = join(work, 'gpt2-with-tokenizer');
    (await import('node:fs')).mkdirSync(folder, { recursive: true });
    for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(g, f), join(folder, f));
    const tk = fileURLToPath(new URL('./reference/fixtures/tiny-tokenizer/', import.meta.url));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tk, f), join(folder, f));
    const m = await loadModel(folder);
    m.addLora({ r: 4, alpha: 8 });
    const { loadDataset, Trainer } = await import('../lib/index.js');
    const data = await loadDataset(Array.from({ length: 12 }, () => ({ text: 'the cat sat on the mat' })), m.tokenizer!, { validation: 2 });
    const out = join(work, 'gpt2-run');
    const r = await new Trainer(m, { epochs: 4, batchSize: 4, lr: 1e-2, outputDir: out, checkpointEvery: 2 }).train(data);
    expect(r.history.eval.length).toBeGreaterThan(0);
    expect(Number(r.history.eval.at(-1)!.loss)).toBeLessThan(Number(r.history.eval[0]!.loss));
    const prompt = m.tokenizer!.encode('the cat');
    const steps = [];
    for await (const s of m.generate(prompt, { maxTokens: 4, stopTokenIds: [] })) steps.push(s.tokenId);
    // Each greedy token (decoded with the KV cache) is the argmax of the adapted model's full-sequence logits.
    let seq = [...prompt];
    for (const t of steps) {
      const l = await m.logits(seq);
      const last = l.data.subarray((seq.length - 1) * 1001);
      expect(t).toBe(last.indexOf(Math.max(...last)));
      seq = [...seq, t];
    }
    expect(steps).toHaveLength(4);
    // Greedy tokens above came through the KV cache; sampling works through it too.
    const sampled = await m.generateText('the cat', { maxTokens: 6, temperature: 0.8, seed: 3, stopTokenIds: [] });
    expect(sampled.length).toBeGreaterThan(0);
  });
});

describe('Hugging Face Mistral folder (sliding window)', () => {
  it('attends within the window as transformers does: logits (whole and through the KV cache), LoRA loss and gradients', async () => {
    const mdir = fileURLToPath(new URL('./reference/fixtures/tiny-mistral/', import.meta.url));
    const r = await openSafetensors(join(mdir, 'expected.safetensors'));
    const fx: Record<string, Tensor> = {};
    for (const n of r.names()) fx[n] = await r.read(n);
    await r.close();
    const ids = [...fx.ids!.data] as number[];
    const m = await loadModel(mdir);
    expect(m.config.slidingWindow).toBe(4);
    const logits = await m.logits(ids);
    expect(relErr(logits.data, fx.logits!.data)).toBeLessThan(1e-4);
    expect(relErr(logits.data, fx.logits_no_window!.data)).toBeGreaterThan(1e-3); // the window matters at 11 tokens
    // Token by token through the KV cache: the same last-token logits.
    let last: Float32Array | null = null;
    const session = m.native.createSession(16);
    for (const id of ids) last = new Tensor(await session.decode(Tensor.from('i32', [1], [id]).handle)).data as Float32Array;
    expect(relErr(last!, fx.logits!.data.subarray(10 * 1001))).toBeLessThan(1e-4);
    m.addLora({ r: 2, alpha: 4, targets: ['v_proj', 'o_proj'] });
    m.setLoraTensors(Object.fromEntries(Object.keys(m.loraTensors()).map((k) => [k, fx[k] as Tensor<'f32'>])));
    const step = await m.trainStep({ inputIds: [ids], labels: [ids] });
    expect(Math.abs(step.loss - fx.loss!.data[0]!)).toBeLessThan(1e-5);
    const grads = m.loraTensors('grads');
    for (const k of Object.keys(grads)) expect(relErr(perToken(grads[k]!, step.tokens), fx[`${k}.grad`]!.data), k).toBeLessThan(1e-4);
  });
});

describe('right-padded batches', () => {
  it('padding with -100 labels leaves the loss and gradients of the real tokens unchanged', async () => {
    const fx = await expected();
    const ids = ([...fx.ids!.data] as number[]).slice(0, 8);
    const run = async (inputIds: number[][], labels: number[][]) => {
      const m = await loadModel(dir);
      m.addLora({ r: 2, seed: 3 });
      const t = m.loraTensors();
      for (const [n, v] of Object.entries(t)) if (n.endsWith('lora_b')) v.data.forEach((_, i) => (v.data[i] = 0.05 * Math.cos(i)));
      m.setLoraTensors(t);
      const step = await m.trainStep({ inputIds, labels });
      return { loss: step.loss, grads: m.loraTensors('grads') };
    };
    const alone = await run([ids], [ids]);
    const padded = await run([[...ids, 0, 0, 0, 0]], [[...ids, -100, -100, -100, -100]]);
    expect(Math.abs(padded.loss - alone.loss)).toBeLessThan(1e-6);
    for (const [n, g] of Object.entries(alone.grads)) expect(relErr(padded.grads[n]!.data, g.data), n).toBeLessThan(1e-5);
  });
});

describe('a model being trained', () => {
  it('applies its adapters in logits and in KV-cache decoding', async () => {
    const fx = await expected();
    const ids = ([...fx.ids!.data] as number[]).slice(0, 10);
    const m = await loadModel(dir);
    const base = await m.logits(ids);
    m.addLora({ r: 3, alpha: 6 });
    const names = Object.keys(m.loraTensors());
    m.setLoraTensors(Object.fromEntries(names.map((n) => [n, fx[n] as Tensor<'f32'>])));
    const adapted = await m.logits(ids);
    expect(relErr(adapted.data, base.data)).toBeGreaterThan(1e-3);
    const session = m.native.createSession(ids.length);
    const last = new Tensor(await session.decode(Tensor.from('i32', [ids.length], ids).handle)) as Tensor<'f32'>;
    expect(relErr(last.data, adapted.data.subarray((ids.length - 1) * 1001))).toBeLessThan(1e-5);
  });
});

describe('memory', () => {
  it('refuses a model larger than the memory available, before allocating it', async () => {
    const before = process.env.TUNEKIT_MEMORY_LIMIT;
    process.env.TUNEKIT_MEMORY_LIMIT = String(100_000); // the tiny model's weights are ~420 kB
    try {
      const err = await loadModel(dir).catch((e) => e);
      expect(err).toBeInstanceOf(TunekitError);
      expect(err.code).toBe('ERR_TUNEKIT_OUT_OF_MEMORY');
      expect(err.message).toMatch(/loading needs about 0\.4 MiB but only 0\.1 MiB of memory is available/);
    } finally {
      if (before === undefined) delete process.env.TUNEKIT_MEMORY_LIMIT;
      else process.env.TUNEKIT_MEMORY_LIMIT = before;
    }
    expect((await loadModel(dir)).config.vocab).toBe(1001);
  });
});
