// Calls that used to lose data without a word (issue #14): token ids that are not integers were
// converted to 0/1 by the typed-array copy, and addLora during a running step replaced the
// adapters under it, dropping the step's gradients.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadModel, TunekitError } from '../lib/index.js';

const dir = fileURLToPath(new URL('./reference/fixtures/tiny-llama/', import.meta.url));
const gpt2 = fileURLToPath(new URL(join('./reference/fixtures/tiny-gpt2/'), import.meta.url));

describe('token ids, labels and positions', () => {
  it.each([NaN, 1.5, 2 ** 32 + 1, 'a', Infinity])('refuse %s, naming where it is', async (bad) => {
    for (const path of [dir, gpt2]) {
      const m = await loadModel(path);
      m.addLora({ r: 2 });
      await expect(m.logits([1, bad as number])).rejects.toThrow(/Expected tokenIds\[1\] to be an integer/);
      await expect(m.trainStep({ inputIds: [[1, 2], [3, bad as number]], labels: [[1, 2], [3, 4]] })).rejects.toThrow(/Expected inputIds\[1\]\[1\] to be an integer/);
      await expect(m.trainStep({ inputIds: [[1, 2]], labels: [[1, bad as number]] })).rejects.toThrow(/Expected labels\[0\]\[1\] to be an integer/);
      await expect(m.evaluate({ inputIds: [[1, 2]], labels: [[1, 2]], positionIds: [[0, bad as number]] })).rejects.toBeInstanceOf(TunekitError);
    }
  });

  it('are checked against the vocabulary after the conversion', async () => {
    const m = await loadModel(dir);
    await expect(m.logits([1, 1001])).rejects.toThrow(/1001/);
  });
});

describe('training calls while a step runs', () => {
  it('addLora, enableFullTraining and addClassifier are refused, and the step keeps its gradients', async () => {
    const batch = { inputIds: [[5, 7, 9, 11, 13, 15]], labels: [[5, 7, 9, 11, 13, 15]] };
    const clean = await loadModel(dir);
    clean.addLora({ r: 2, seed: 3 });
    await clean.trainStep(batch);
    const want = clean.loraTensors('grads');
    const m = await loadModel(dir);
    m.addLora({ r: 2, seed: 3 });
    const running = m.trainStep(batch);
    expect(() => m.addLora({ r: 4 })).toThrow('Expected no training call running during addLora()');
    expect(() => m.enableFullTraining()).toThrow('Expected no training call running during enableFullTraining()');
    expect(() => m.addClassifier({ classes: 2 })).toThrow('Expected no training call running during addClassifier()');
    await running;
    const got = m.loraTensors('grads');
    for (const [name, g] of Object.entries(want)) expect(Buffer.from(got[name]!.bytes).equals(Buffer.from(g.bytes)), name).toBe(true);
  });
});
