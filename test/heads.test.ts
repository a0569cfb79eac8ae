// Classification heads against test/reference/make_tiny_heads.py on the tiny Llama with LoRA on
// q/v: transformers' LlamaForSequenceClassification (last real token, linear score), a mean-pooled
// tanh MLP, and token classification — logits, loss, head gradients and LoRA gradients (fp32,
// relative error < 1e-4). Also the frozen-decoder paths: features() and headStep().
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { perToken, relErr } from './reference.js';
import { loadModel, openSafetensors, Tensor, TunekitError } from '../lib/index.js';

const dir = fileURLToPath(new URL('./reference/fixtures/tiny-llama/', import.meta.url));
const fixture = fileURLToPath(new URL('./reference/fixtures/tiny-heads.safetensors', import.meta.url));

async function load() {
  const r = await openSafetensors(fixture);
  const fx: Record<string, Tensor> = {};
  for (const n of r.names()) fx[n] = await r.read(n);
  await r.close();
  return fx;
}
const rows = (t: Tensor, width: number) => Array.from({ length: t.data.length / width }, (_, i) => Array.from(t.data.subarray(i * width, (i + 1) * width)));

async function modelWith(fx: Record<string, Tensor>, head: { classes: number; hidden?: number; pooling?: 'last' | 'mean'; token?: boolean }, prefix: string) {
  const m = await loadModel(dir);
  m.addLora({ r: 2, alpha: 4, targets: ['q_proj', 'v_proj'] });
  m.setLoraTensors(Object.fromEntries(Object.keys(m.loraTensors()).map((k) => [k, fx[k] as Tensor<'f32'>])));
  m.addClassifier(head);
  const h = m.headTensors();
  const set: Record<string, Tensor<'f32'>> = {};
  for (const k of Object.keys(h)) {
    const name = k.replace('head.', '');
    set[k] = (fx[`${prefix}.${name}`] ?? Tensor.zeros('f32', h[k]!.shape)) as Tensor<'f32'>; // transformers' score has no bias
  }
  m.setHeadTensors(set);
  return m;
}

async function check(fx: Record<string, Tensor>, m: Awaited<ReturnType<typeof modelWith>>, prefix: string, labels: number[] | number[][]) {
  const batch = { inputIds: rows(fx.ids!, 6), labels, lengths: Array.from(fx.lengths!.data) };
  const e = await m.evaluate(batch);
  expect(relErr(e.logits!.data, fx[`${prefix}.logits`]!.data)).toBeLessThan(1e-4);
  const s = await m.trainStep(batch);
  expect(Math.abs(s.loss - fx[`${prefix}.loss`]!.data[0]!)).toBeLessThan(1e-5);
  const hg = m.headTensors('grads');
  for (const k of Object.keys(hg)) {
    const want = fx[`${prefix}.${k.replace('head.', '')}.grad`];
    if (want) expect(relErr(perToken(hg[k]!, s.tokens), want.data), k).toBeLessThan(1e-4);
  }
  const lg = m.loraTensors('grads');
  for (const k of Object.keys(lg)) expect(relErr(perToken(lg[k]!, s.tokens), fx[`${prefix}.${k}.grad`]!.data), k).toBeLessThan(1e-4);
}

describe('classifier heads (vs transformers / torch)', () => {
  it('sequence, last token, linear: LlamaForSequenceClassification', async () => {
    const fx = await load();
    await check(fx, await modelWith(fx, { classes: 3 }, 'seq_last'), 'seq_last', Array.from(fx.labels!.data));
  });
  it('sequence, mean pooling, tanh MLP', async () => {
    const fx = await load();
    await check(fx, await modelWith(fx, { classes: 3, hidden: 7, pooling: 'mean' }, 'seq_mlp'), 'seq_mlp', Array.from(fx.labels!.data));
  });
  it('token classification', async () => {
    const fx = await load();
    await check(fx, await modelWith(fx, { classes: 4, token: true }, 'token'), 'token', rows(fx['token.labels']!, 6));
  });
});

describe('frozen decoder + head', () => {
  it('features() pools what the head sees; headStep() equals the full step on a frozen decoder', async () => {
    const fx = await load();
    const m = await loadModel(dir);
    m.addClassifier({ classes: 3, hidden: 5, seed: 2 });
    expect(m.trainable).toBe('head');
    const batch = { inputIds: rows(fx.ids!, 6), labels: Array.from(fx.labels!.data), lengths: Array.from(fx.lengths!.data) };
    const feats = await m.features(batch.inputIds, { lengths: batch.lengths });
    expect(feats.shape).toEqual([3, 40]);
    const full = await m.trainStep(batch);
    const g1 = m.optimizerState().grads!.data.slice();
    const s = m.optimizerState();
    m.setOptimizerState({ params: s.params, m: s.m, v: s.v, step: 0 });
    const head = m.headStep(feats, batch.labels);
    expect(Math.abs(head.loss - full.loss)).toBeLessThan(1e-6);
    expect(relErr(m.optimizerState().grads!.data, g1)).toBeLessThan(1e-5);
    await m.optimizerStep({ lr: 0.1 });
    expect(m.headStep(feats, batch.labels, { backward: false }).loss).toBeLessThan(head.loss);
  });

  it('full fine-tuning + head: the weights stay in place when the head is added (same logits as frozen)', async () => {
    const fx = await load();
    const batch = { inputIds: rows(fx.ids!, 6), labels: Array.from(fx.labels!.data), lengths: Array.from(fx.lengths!.data) };
    const frozen = await loadModel(dir), full = await loadModel(dir);
    frozen.addClassifier({ classes: 3, seed: 4 });
    full.enableFullTraining();
    full.addClassifier({ classes: 3, seed: 4 });
    const a = await frozen.evaluate(batch), b = await full.evaluate(batch);
    expect(Array.from(b.logits!.data)).toEqual(Array.from(a.logits!.data));
    await full.trainStep(batch);
    expect(Object.keys(full.fullTensors()).length).toBeGreaterThan(10);
  });

  it('refuses labels that do not fit the head, and adapters added after it', async () => {
    const m = await loadModel(dir);
    m.addClassifier({ classes: 2 });
    await expect(m.trainStep({ inputIds: [[1, 2, 3]], labels: [2] })).rejects.toThrow(/labels in \[0, 2\) or -100 but element 0 holds 2/);
    await expect(m.trainStep({ inputIds: [[1, 2, 3]], labels: [[1, 1, 1]] })).rejects.toThrow(/one class label per sequence/);
    expect(() => m.addLora({})).toThrow(TunekitError);
    expect(() => m.addClassifier({ classes: 1 })).toThrow(/Expected integer >= 2 for classes|number >= 2 for classes/);
  });
});
