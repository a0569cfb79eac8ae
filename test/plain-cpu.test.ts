// The one binary must load and compute correctly on a plain x86-64 CPU (no AVX at all): ISA
// variants are separate target-attributed functions, never a global -march. We prove it by running
// the built addon under QEMU's user-mode emulation of the baseline `qemu64` CPU (SSE2 only).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const qemu = spawnSync('qemu-x86_64', ['--version']).status === 0;
const x64 = process.arch === 'x64' && process.platform === 'linux';

const probe = `
const addon = require('node-gyp-build')(process.cwd());
const info = addon.runtimeInfo();
const [m, n, k] = [37, 29, 53];
const a = new addon.Tensor('f32', [m, k]), b = new addon.Tensor('f32', [n, k]), c = new addon.Tensor('f32', [m, n]);
const A = new Float32Array(a.buffer), B = new Float32Array(b.buffer);
for (let i = 0; i < A.length; i++) A[i] = Math.sin(i);
for (let i = 0; i < B.length; i++) B[i] = Math.cos(i);
addon.gemm(a, b, c, { transposeB: true }).then(() => {
  const C = new Float32Array(c.buffer);
  let worst = 0;
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0, mag = 0;
    for (let p = 0; p < k; p++) { s += A[i * k + p] * B[j * k + p]; mag += Math.abs(A[i * k + p] * B[j * k + p]); }
    worst = Math.max(worst, Math.abs(s - C[i * n + j]) / (2 * (k + 2) * 2 ** -24 * mag));
  }
  console.log(JSON.stringify({ isa: info.isa, features: info.cpuFeatures, worst }));
});`;

// CI installs qemu-user (.ci/run); elsewhere the test is skipped rather than failing.
it.skipIf(!qemu || !x64)('loads and computes on a baseline x86-64 CPU without AVX', () => {
  const r = spawnSync('qemu-x86_64', ['-cpu', 'qemu64', process.execPath, '-e', probe], { cwd: root, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout.trim());
  expect(out.isa).toBe('scalar');
  expect(out.features.avx2).toBe(false);
  expect(out.worst).toBeLessThanOrEqual(1);
});
