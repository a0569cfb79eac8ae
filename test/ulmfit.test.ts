// ULMFiT pieces (discriminative rates per layer group, gradual unfreezing), gradient-based
// parameter importance, and seeded text augmentation, on the tiny Llama + tokenizer.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyModelFolder } from './helpers.js';
import { afterAll, describe, expect, it } from 'vitest';
import { augmentRows, augmentText, batches, loadDataset, loadModel, Random, rankParameterImportance, Trainer } from '../lib/index.js';

const work = mkdtempSync(join(tmpdir(), 'tunekit-ulmfit-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const modelDir = tinyModelFolder(join(work, 'model'));
const rows = Array.from({ length: 16 }, (_, i) => ({ text: `the cat sat on the mat ${i} hello world` }));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('ULMFiT', () => {
  it('layer groups cover the trainable vector bottom to top', async () => {
    const m = await loadModel(modelDir);
    const total = m.enableFullTraining();
    m.addClassifier({ classes: 2 });
    const g = m.paramGroups();
    expect(g.map((x) => x.name)).toEqual(['embed', 'layer.0', 'layer.1', 'output', 'head']);
    const covered = g.reduce((a, x) => a + x.length, 0);
    expect(covered).toBe(m.optimizerState().params.data.length);
    expect(covered - g.at(-1)!.length).toBe(total);
  });

  it('discriminative rates divide each lower group\'s step by the factor; 0 freezes', async () => {
    const m = await loadModel(modelDir);
    m.enableFullTraining();
    const groups = m.paramGroups();
    const data = await loadDataset(rows, m.tokenizer!);
    const before = m.trainableParams().data.slice();
    await new Trainer(m, { maxSteps: 1, batchSize: 4, lr: 1e-3, schedule: 'constant', maxGradNorm: 0, discriminativeLr: 2.6 }).train(data.train);
    const after = m.trainableParams().data;
    const step = (name: string) => {
      const gr = groups.find((x) => x.name === name)!;
      const d: number[] = [];
      for (let i = gr.offset; i < gr.offset + gr.length; i++) if (after[i] !== before[i]) d.push(Math.abs(after[i]! - before[i]!));
      return median(d);
    };
    // Adam's first step moves each weight by about lr (sign of its gradient).
    expect(step('output') / 1e-3).toBeCloseTo(1, 1);
    expect(step('layer.1') / step('output')).toBeCloseTo(1 / 2.6, 1);
    expect(step('layer.0') / step('layer.1')).toBeCloseTo(1 / 2.6, 1);
  });

  it('gradual unfreezing trains only the top group in the first epoch, then one more per epoch', async () => {
    const m = await loadModel(modelDir);
    m.enableFullTraining();
    const groups = m.paramGroups();
    const data = await loadDataset(rows, m.tokenizer!, { shuffle: false });
    const start = m.trainableParams().data.slice();
    const changed: string[][] = [];
    const trainer = new Trainer(m, { epochs: 3, batchSize: 8, lr: 1e-3, gradualUnfreezing: true, schedule: 'slanted-triangular' });
    trainer.on('step', (e) => {
      if (e.step % 2 !== 0) return; // 2 steps per epoch: look at the end of each epoch
      const now = m.trainableParams().data;
      changed.push(groups.filter((g) => { for (let i = g.offset; i < g.offset + g.length; i++) if (now[i] !== start[i]) return true; return false; }).map((g) => g.name));
    });
    await trainer.train(data.train);
    expect(changed).toEqual([['output'], ['layer.1', 'output'], ['layer.0', 'layer.1', 'output']]);
  });
});

describe('parameter importance', () => {
  it('ranks |gradient x weight| per tensor, module and layer, and suggests LoRA targets', async () => {
    const m = await loadModel(modelDir);
    const data = await loadDataset(rows, m.tokenizer!, { shuffle: false });
    const r = await rankParameterImportance(m, data.train, { batches: 2, batchSize: 4 });
    expect(r.batches).toBe(2);
    expect(r.layers.map((l) => l.name).sort()).toEqual(['layer.0', 'layer.1']);
    expect(r.suggestedTargets).toHaveLength(3);
    for (let i = 1; i < r.tensors.length; i++) expect(r.tensors[i]!.score).toBeLessThanOrEqual(r.tensors[i - 1]!.score);
    // Independent recomputation of one tensor: mean over the two batches of Σ|g·w|, g the gradient
    // of each batch's mean loss (trainStep's sums over its labelled tokens, divided by their count).
    const ref = await loadModel(modelDir);
    ref.enableFullTraining();
    const w = ref.fullTensors('params')['blk.1.attn_v.weight']!.data;
    let total = 0, n = 0;
    for await (const b of batches(data.train.examples(0), { batchSize: 4, maxLength: 512, padId: m.tokenizer!.eosTokenId! })) {
      if (n++ === 2) break;
      const { tokens } = await ref.trainStep(b);
      const g = ref.fullTensors('grads')['blk.1.attn_v.weight']!.data;
      for (let i = 0; i < g.length; i++) total += Math.abs(g[i]! * w[i]!) / tokens;
      const s = ref.optimizerState();
      ref.setOptimizerState({ params: s.params, m: s.m, v: s.v, step: 0 });
    }
    const ours = r.tensors.find((t) => t.name === 'blk.1.attn_v.weight')!;
    expect(Math.abs(ours.score - total / 2) / (total / 2)).toBeLessThan(1e-9);
    expect(ours.module).toBe('v_proj');
  });
});

describe('augmentation', () => {
  it('deletes, swaps and inserts words, seeded', () => {
    const text = 'the quick brown fox jumps over the lazy dog';
    const a = augmentText(text, { deletion: 0.3 }, new Random(1)), b = augmentText(text, { deletion: 0.3 }, new Random(1));
    expect(a).toBe(b);
    expect(a.split(' ').length).toBeLessThan(9);
    const swapped = augmentText(text, { swaps: 3 }, new Random(2));
    expect(swapped.split(' ').sort()).toEqual(text.split(' ').sort());
    const inserted = augmentText(text, { insertions: 2, vocabulary: ['zebra'] }, new Random(3));
    expect(inserted.split(' ').filter((w) => w === 'zebra')).toHaveLength(2);
    expect(augmentText('word', { deletion: 0.99 }, new Random(4))).toBe('word');
    const out = augmentRows([{ text: 'a b c', label: 1 }, { text: 'd e f', label: 0 }], { copies: 2, swaps: 1, insertions: 1, seed: 5 });
    expect(out).toHaveLength(6);
    expect(out.slice(2).map((r) => r.label)).toEqual([1, 0, 1, 0]);
    expect(augmentRows([{ text: 'a b c' }], { copies: 1, swaps: 1, seed: 5 })).toEqual(augmentRows([{ text: 'a b c' }], { copies: 1, swaps: 1, seed: 5 }));
  });
});
