// The tiny-model fixtures written by test/reference/make_tiny_*.py: their expected.safetensors
// (every tensor by name), the fixed batch of two 12-token rows they record (ids, labels), and
// the check of a LoRA step against the PEFT adapters and gradients they hold.
import { join } from 'node:path';
import { expect } from 'vitest';
import { openSafetensors, type Model, type Tensor } from '../lib/index.js';
import { perToken, relErr } from './reference.js';

export async function readFixture(dir: string): Promise<Record<string, Tensor>> {
  const r = await openSafetensors(join(dir, 'expected.safetensors'));
  const out: Record<string, Tensor> = {};
  for (const n of r.names()) out[n] = await r.read(n);
  await r.close();
  return out;
}

export function fixtureBatch(fx: Record<string, Tensor>) {
  const ids = [...fx.ids!.data] as number[], labels = [...fx.labels!.data] as number[];
  return { inputIds: [ids.slice(0, 12), ids.slice(12)], labels: [labels.slice(0, 12), labels.slice(12)] };
}

/** Adds PEFT's adapters the fixture recorded (r 3, alpha 6, seeded A and B) to the model; returns their names. */
export function withFixtureLora(m: Model, fx: Record<string, Tensor>): string[] {
  m.addLora({ r: 3, alpha: 6 });
  const names = Object.keys(m.loraTensors());
  m.setLoraTensors(Object.fromEntries(names.map((n) => [n, fx[n] as Tensor<'f32'>])));
  return names;
}

/** A training step of those adapters on the fixture batch: the loss within 1e-5 and every gradient within 1e-4 of PEFT's. */
export async function expectPeftLoraStep(m: Model, fx: Record<string, Tensor>, names: string[]): Promise<void> {
  const step = await m.trainStep(fixtureBatch(fx));
  expect(Math.abs(step.loss - fx.lora_loss!.data[0]!)).toBeLessThan(1e-5);
  const grads = m.loraTensors('grads');
  for (const n of names) expect(relErr(perToken(grads[n]!, step.tokens), fx[`${n}.grad`]!.data), n).toBeLessThan(1e-4);
}
