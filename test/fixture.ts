// The tiny-model fixtures written by test/reference/make_tiny_*.py: their expected.safetensors
// (every tensor by name) and the fixed batch of two 12-token rows they record (ids, labels).
import { join } from 'node:path';
import { openSafetensors, type Tensor } from '../lib/index.js';

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
