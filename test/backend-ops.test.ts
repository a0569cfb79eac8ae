// Every backend against the CPU, op by op (as ggml's test-backend-ops): each entry of the op table
// runs through runOp on fresh random data, its outputs poisoned with NaN first (so an output an op
// forgets to write fails), forward and backward, and the device result must match the CPU's by
// normalized error (the CPU's ops are held to fp64 references and finite differences in
// ops.test.ts, gemm.test.ts, lora.test.ts). Then a SmolLM2-135M LoRA step, an optimizer step that
// moves between the backends and greedy generation must agree. Device checks run wherever a
// device backend can run (a CUDA build on a machine with an NVIDIA GPU) and skip, saying so,
// elsewhere; the harness itself (every case's marshalling, every output written, the same bits
// on a second run) is checked on the CPU everywhere.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cases, caseError, runCase } from '../bench/gpu/ops-cases.js';
import { stepAgreement } from '../bench/gpu/step-check.js';
import { runtimeInfo } from '../lib/index.js';
import { SMOLLM2 } from './setup/fetch-model.js';

describe('the harness on the CPU', () => {
  it.each(cases().map((c) => [c.label, c] as const))('%s: writes every output, the same bits twice', async (_, c) => {
    const a = await runCase(c, 'cpu'), b = await runCase(c, 'cpu');
    for (const [k, v] of a.outputs.entries()) {
      expect(v.every(Number.isFinite), `output ${c.outputs[k]} finite`).toBe(true);
      expect(Buffer.from(b.outputs[k]!.buffer).equals(Buffer.from(v.buffer))).toBe(true);
    }
    expect(b.result).toEqual(a.result);
  });
});

const info = runtimeInfo();
const devices = info.backends.filter((b) => b !== 'cpu' && !(b === 'cuda' && info.cuda?.error));
if (devices.length === 0) {
  const why = info.cuda ? `this CUDA build finds no usable GPU (${info.cuda.error})` : `this build (${info.buildFlavour}) has no device backend (TUNEKIT_CUDA=1 npm install builds one)`;
  it.skip(`device backends against the CPU: skipped, ${why}`, () => {});
}

for (const backend of devices) {
  describe(`${backend} against the CPU`, () => {
    it.each(cases().map((c) => [c.label, c] as const))('%s', async (_, c) => {
      const err = await caseError(c, backend);
      expect(err, `${c.label}: normalized error ${err}`).toBeLessThanOrEqual(c.tol);
    });

    // The real model: bounds on bench/gpu/step-check.ts's figures (bf16 a bf16 step apart).
    it.skipIf(!existsSync(SMOLLM2))('SmolLM2-135M: a LoRA step, the optimizer state across backends, generation', async () => {
      const a = await stepAgreement(SMOLLM2, backend);
      expect(a.loss.fp32).toBeLessThan(1e-5);
      expect(a.grads.fp32).toBeLessThan(1e-3);
      expect(a.loss.bf16).toBeLessThan(1e-2);
      expect(a.grads.bf16).toBeLessThan(5e-2);
      expect(a.logitsAfterMove).toBeLessThan(1e-4);
      expect(a.text!.device).toBe(a.text!.cpu);
    }, 300_000);
  });
}
