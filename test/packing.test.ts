// Packed rows (several examples in one row, position ids restarting at 0) must train exactly as
// the examples would one by one: no attention across the boundary, no loss on the token that
// would predict the next example's first token. The reference is the engine itself on the
// unpacked examples (itself checked against transformers/PEFT in hf-llama.test.ts).
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { relErr } from './reference.js';
import { loadModel, Tensor, TunekitError } from '../lib/index.js';

const dir = fileURLToPath(new URL('./reference/fixtures/tiny-llama/', import.meta.url));

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

async function withRandomAdapters(dropout = 0) {
  const m = await loadModel(dir);
  m.addLora({ r: 2, alpha: 4, seed: 3, dropout });
  const r = rng(7);
  const tensors = m.loraTensors();
  for (const t of Object.values(tensors)) for (let i = 0; i < t.data.length; i++) t.data[i] = (r() - 0.5) * 0.2;
  m.setLoraTensors(tensors);
  return m;
}

const zeroGrads = (m: Awaited<ReturnType<typeof loadModel>>) => {
  const s = m.optimizerState();
  m.setOptimizerState({ params: s.params, m: s.m, v: s.v, step: s.step });
};

describe('packed rows', () => {
  const r = rng(11);
  const examples = [5, 7, 4].map((n) => Array.from({ length: n }, () => Math.floor(r() * 1001)));

  it('give the loss and gradients of the examples trained one by one', async () => {
    const m = await withRandomAdapters();
    // One by one: each step's gradient sums, added.
    let lossSum = 0, count = 0;
    let gradSum: Float64Array | null = null;
    for (const ex of examples) {
      const s = await m.trainStep({ inputIds: [ex], labels: [ex] });
      lossSum += s.loss * s.tokens;
      count += s.tokens;
      const g = m.optimizerState().grads!.data;
      gradSum ??= new Float64Array(g.length);
      for (let i = 0; i < g.length; i++) gradSum[i]! += g[i]!;
      zeroGrads(m);
    }
    // Packed: all three in one row, then padded by a second row holding the first example alone.
    const row = examples.flat(), pos = examples.flatMap((e) => e.map((_, i) => i));
    const pad = [...examples[0]!, ...Array(row.length - examples[0]!.length).fill(0)];
    const padLabels = [...examples[0]!, ...Array(row.length - examples[0]!.length).fill(-100)];
    const padPos = pad.map((_, i) => i);
    const packed = await m.trainStep({ inputIds: [row, pad], labels: [row, padLabels], positionIds: [pos, padPos] });
    const extra = examples[0]!.length - 1;
    expect(packed.tokens).toBe(count + extra);
    // Remove the second row's share (the first example again) from the packed figures.
    const first = await m.evaluate({ inputIds: [examples[0]!], labels: [examples[0]!] });
    expect(Math.abs((packed.loss * packed.tokens - first.loss * extra) / count - lossSum / count)).toBeLessThan(1e-5);

    const g = m.optimizerState().grads!.data;
    zeroGrads(m);
    await m.trainStep({ inputIds: [examples[0]!], labels: [examples[0]!] });
    const g0 = m.optimizerState().grads!.data;
    const want = new Float32Array(g.length), got = new Float32Array(g.length);
    for (let i = 0; i < g.length; i++) {
      want[i] = gradSum![i]! / count;
      got[i] = (g[i]! - g0[i]!) / count;
    }
    expect(relErr(got, want)).toBeLessThan(1e-4);
    // Without position ids the same row leaks across examples: the figures differ.
    zeroGrads(m);
    const leaky = await m.evaluate({ inputIds: [row], labels: [row] });
    const sealed = await m.evaluate({ inputIds: [row], labels: [row], positionIds: [pos] });
    expect(Math.abs(leaky.loss - sealed.loss)).toBeGreaterThan(1e-4);
  });

  it('evaluate gives the training loss and leaves gradients alone', async () => {
    const m = await withRandomAdapters();
    const batch = { inputIds: [examples[1]!], labels: [examples[1]!] };
    const e = await m.evaluate(batch);
    expect(m.optimizerState().grads!.data.every((x) => x === 0)).toBe(true);
    const s = await m.trainStep(batch);
    expect(e.loss).toBe(s.loss);
    expect(e.tokens).toBe(s.tokens);
    // A frozen model (no adapters) can be evaluated too.
    const frozen = await loadModel(dir);
    expect((await frozen.evaluate(batch)).loss).toBeGreaterThan(0);
  });

  it('LoRA dropout: seeded masks, in training steps only, the same when recomputed by checkpointing', async () => {
    const m = await withRandomAdapters(0.3);
    const batch = { inputIds: [examples[1]!], labels: [examples[1]!] };
    const step = async (options: { seed: number; checkpoint?: boolean }) => {
      const s = await m.trainStep(batch, options);
      const g = Float32Array.from(m.optimizerState().grads!.data);
      zeroGrads(m);
      return { loss: s.loss, g };
    };
    const a = await step({ seed: 1 }), again = await step({ seed: 1 }), other = await step({ seed: 2 });
    const recomputed = await step({ seed: 1, checkpoint: true });
    expect(again.loss).toBe(a.loss);
    expect(Array.from(again.g)).toEqual(Array.from(a.g));
    expect(other.loss).not.toBe(a.loss);
    expect(relErr(recomputed.g, a.g)).toBeLessThan(1e-6);
    const plain = await m.evaluate(batch);
    expect(plain.loss).not.toBe(a.loss);
    expect(() => m.addLora({ dropout: 1 })).toThrow(/dropout/);
  });

  it('refuses position ids that do not count up from 0', async () => {
    const m = await withRandomAdapters();
    const ex = examples[0]!;
    await expect(m.trainStep({ inputIds: [ex], labels: [ex], positionIds: [[1, 2, 3, 4, 5]] })).rejects.toThrow(/start each row at 0.*element 0 holds 1/);
    await expect(m.trainStep({ inputIds: [ex], labels: [ex], positionIds: [[0, 1, 3, 4, 5]] })).rejects.toThrow(TunekitError);
    await expect(m.trainStep({ inputIds: [ex], labels: [ex], positionIds: [[0, 1]] })).rejects.toThrow(/positionIds shaped like inputIds/);
    const s = m.optimizerState();
    expect(() => m.setOptimizerState({ ...s, m: Tensor.zeros('f32', [3]) })).toThrow(/Expected m to be f32 \[\d+\] but received \[3\]/);
  });
});
