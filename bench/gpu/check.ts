// The GPU machine's check (bench/gpu/run.sh runs it; no vitest there): every backend-ops case on
// the device against the CPU, NCCL on one GPU, then the model step's agreement, as one table with
// a verdict per row. Usage: node dist/bench/gpu/check.js [model] — a GGUF file or a Hugging Face folder.
import { runtimeInfo } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { caseError, cases } from './ops-cases.js';
import { stepAgreement } from './step-check.js';

const device = 'cuda';
const info = runtimeInfo();
if (!info.cuda || info.cuda.error) {
  console.error(`no usable GPU: ${info.cuda ? info.cuda.error : `this build is ${info.buildFlavour}`}`);
  process.exit(2);
}
console.log(`${info.cuda.devices.map((d) => `${d.device} ${d.name} (${d.computeCapability})`).join(', ')}; CUDA ${info.cuda.runtimeVersion}, driver ${info.cuda.driverVersion}`);
let failed = 0;
const row = (label: string, value: number, bound: number) => {
  const ok = value <= bound;
  if (!ok) failed++;
  console.log(`| ${label.padEnd(52)} | ${value.toExponential(2).padStart(9)} | ${bound.toExponential(0).padStart(6)} | ${ok ? 'ok' : 'FAIL'} |`);
};
console.log('| case                                                 | error     | bound  |      |');
for (const c of cases()) {
  try {
    row(c.label, await caseError(c, device), c.tol);
  } catch (e) {
    failed++;
    console.log(`| ${c.label.padEnd(52)} | threw: ${(e as Error).message}`);
  }
}
// NCCL as a group of one (issue 16: NCCL refuses two ranks on one GPU): it initializes, and every
// collective, on GPU buffers and through host staging, gives the single-process result.
try {
  row('NCCL, one rank: values its collectives got wrong', (await native.runOp('nccl_check', [], {}))[0]!, 0);
} catch (e) {
  failed++;
  console.log(`| NCCL check threw: ${(e as Error).message}`);
}
const model = process.argv[2];
if (model) {
  const a = await stepAgreement(model, device);
  row('step loss fp32', a.loss.fp32, 1e-5);
  row('step LoRA gradients fp32', a.grads.fp32, 1e-3);
  row('step loss bf16', a.loss.bf16, 1e-2);
  row('step LoRA gradients bf16', a.grads.bf16, 5e-2);
  row('logits after the optimizer state moved to the CPU', a.logitsAfterMove, 1e-4);
  if (a.text) row(`greedy text (${JSON.stringify(a.text.device)})`, a.sameText ? 0 : 1, 0);
}
console.log(failed ? `${failed} failed` : 'all agree');
process.exitCode = failed ? 1 : 0;
