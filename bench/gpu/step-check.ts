// The real model on a device backend against the CPU: a SmolLM2-135M LoRA step (loss and every
// LoRA gradient, fp32 and bf16), then an optimizer step on the device whose state moves to the
// CPU (what a checkpoint carries), the logits after it, and a greedy continuation. Shared by
// test/backend-ops.test.ts (which holds the figures to bounds) and bench/gpu/check.mjs.
import { loadModel } from '../../lib/index.js';
import { rng } from '../random.js';
import { normalizedError } from './ops-cases.js';

export interface StepAgreement {
  loss: { fp32: number; bf16: number }; // |ours − cpu| / cpu
  grads: { fp32: number; bf16: number }; // the worst normalized error over the LoRA gradients
  logitsAfterMove: number; // normalized error of the logits once the device's optimizer state is on the CPU
  sameText: boolean | null; // greedy continuations equal (null: the model has no tokenizer)
  text: { cpu: string; device: string } | null;
}

export async function stepAgreement(model: string, device: string): Promise<StepAgreement> {
  const cpu = await loadModel(model), gpu = await loadModel(model, { device: device as 'cuda' });
  for (const m of [cpu, gpu]) m.addLora({ r: 8, alpha: 16, seed: 3 });
  const r = rng(9);
  const vocab = cpu.config.vocab;
  const inputIds = [0, 1].map(() => Array.from({ length: 96 }, () => Math.floor(r() * vocab)));
  const batch = { inputIds, labels: inputIds };
  const out = { loss: { fp32: 0, bf16: 0 }, grads: { fp32: 0, bf16: 0 } };
  for (const mode of ['fp32', 'bf16'] as const) {
    const a = await cpu.trainStep(batch, { bf16: mode === 'bf16' }), b = await gpu.trainStep(batch, { bf16: mode === 'bf16' });
    out.loss[mode] = Math.abs(a.loss - b.loss) / a.loss;
    const ga = cpu.loraTensors('grads'), gb = gpu.loraTensors('grads');
    for (const name of Object.keys(ga)) out.grads[mode] = Math.max(out.grads[mode], normalizedError(gb[name]!.data, ga[name]!.data));
  }
  await gpu.optimizerStep({ lr: 1e-3 });
  cpu.setOptimizerState(gpu.optimizerState());
  const la = await cpu.logits(inputIds[0]!), lb = await gpu.logits(inputIds[0]!);
  const prompt = 'The capital of France is', greedy = { maxTokens: 12, temperature: 0 };
  const text = cpu.tokenizer ? { cpu: await cpu.generateText(prompt, greedy), device: await gpu.generateText(prompt, greedy) } : null;
  return { ...out, logitsAfterMove: normalizedError(lb.data, la.data), sameText: text && text.cpu === text.device, text };
}
