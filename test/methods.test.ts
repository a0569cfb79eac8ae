// Every classification method trains and evaluates on a tiny model (the tiny Llama with the tiny
// tokenizer) and a small separable task; labels that training never saw and single-class data
// are refused with clear errors.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyModelFolder } from './helpers.js';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDataset, loadModel, Random, trainClassifier, Trainer, type ClassifierMethod } from '../lib/index.js';

const work = mkdtempSync(join(tmpdir(), 'tunekit-methods-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const modelDir = join(work, 'model');
tinyModelFolder(modelDir);

const r = new Random(5);
const words = ['on', 'mat', 'a', 'ran', 'sat', 'the'];
const rows = Array.from({ length: 80 }, (_, i) => {
  const spam = i % 2 === 0;
  const filler = Array.from({ length: 3 + r.below(4) }, () => words[r.below(words.length)]).join(' ');
  return { text: `${spam ? 'hello world hello' : 'the cat dog'} ${filler}`, label: spam ? 'spam' : 'ham' };
});

describe('classification methods', () => {
  const methods: [ClassifierMethod, number][] = [['feature-based', 0.8], ['frozen-dense', 0.8], ['lora', 0.8], ['qlora', 0.8], ['full', 0.8]];
  for (const [method, floor] of methods) {
    it(`${method} trains and scores the test split`, async () => {
      const tok = (await loadModel(modelDir)).tokenizer!;
      const data = await loadDataset(rows, tok, { validation: 10, test: 20, seed: 3 });
      const res = await trainClassifier(modelDir, data, {
        method, pooling: 'mean', denseHidden: 16, cacheDir: join(work, 'cache'), lora: { r: 4, alpha: 8 },
        training: { epochs: method === 'feature-based' ? 60 : 4, batchSize: 8, lr: method === 'full' ? 2e-3 : 1e-2, maxLength: 32, schedule: 'constant' },
      });
      expect(res.labels).toEqual(['ham', 'spam']);
      expect(res.test!.report!.confusion.flat().reduce((a, b) => a + b, 0)).toBe(20);
      expect(res.test!.accuracy).toBeGreaterThanOrEqual(floor);
      expect(res.trainableParameters).toBeGreaterThan(0);
    }, 60_000);
  }

  it('token classification: tags on each word\'s first token, trained and scored per token', async () => {
    const tok = (await loadModel(modelDir)).tokenizer!;
    const animals = ['cat', 'dog'], other = ['the', 'sat', 'on', 'mat', 'hello', 'world'];
    const ner = Array.from({ length: 60 }, () => {
      const tokens = Array.from({ length: 4 + r.below(3) }, () => (r.next() < 0.3 ? animals[r.below(2)]! : other[r.below(other.length)]!));
      return { tokens, tags: tokens.map((w) => (animals.includes(w) ? 'ANIMAL' : 'O')) };
    });
    const data = await loadDataset(ner, tok, { validation: 8, test: 12, seed: 2, shuffle: false });
    expect(data.format).toBe('token-classification');
    const [first] = await (async () => { const out = []; for await (const e of data.test!.examples()) out.push(e); return out; })();
    const words = ner.find((x) => x.tokens.join(' ') === tok.decode([...first!.inputIds]).trim())!;
    expect(first!.tags!.filter((t) => t !== null)).toEqual(words.tags); // one tag per word
    const res = await trainClassifier(modelDir, data, { method: 'lora', lora: { r: 4, alpha: 8 }, training: { epochs: 15, batchSize: 8, lr: 1e-2, maxLength: 32, schedule: 'constant' } });
    expect(res.labels).toEqual(['ANIMAL', 'O']);
    expect(res.test!.tokens).toBeGreaterThan(40);
    expect(res.test!.report!.confusion.flat().reduce((a, b) => a + b, 0)).toBe(res.test!.tokens);
    expect(res.test!.accuracy).toBeGreaterThan(0.8); // O alone would be ~0.7
  }, 60_000);

  it('refuses a label the training split never had, and a single class', async () => {
    const model = await loadModel(modelDir);
    model.addClassifier({ classes: 2 });
    const tok = model.tokenizer!;
    const single = await loadDataset(rows.map((x) => ({ ...x, label: 'ham' })), tok);
    await expect(new Trainer(model).train(single)).rejects.toThrow(/at least two classes .* only "ham"/);
    const odd = [...rows, { text: 'the mat', label: 'eggs' }];
    const data = await loadDataset(odd, tok, { validation: 0, test: 0 });
    const three = await new Trainer(model).train(data).catch((e) => e);
    expect(String(three)).toMatch(/classifier has 2 classes but the training split has 3 labels \(eggs, ham, spam\)/);
    const trainer = new Trainer(model);
    trainer.classes = new Map([['ham', 0], ['spam', 1]]);
    await expect(trainer.evaluate(data.train)).rejects.toThrow(/item 80: label "eggs" was not seen in training/);
  });
});
