// The CUDA build compiles on every run, with or without a GPU (issue 13: it must never rot): the
// README's `TUNEKIT_CUDA=1 npm install` path, in a copy of the package so the CPU build/ the other
// tests load is left alone, with the CUDA 13.0 toolchain scripts/setup-cuda.sh installs from PyPI
// (kept in the project's .cache). The addon it builds must load and run on the CPU, and say — not
// crash — when the GPU cannot be used; and the GPU's element decoder, compiled for the host, must
// give gguf-py's values for every GGUF format. The GPU's own checks are test/backend-ops.test.ts.
// TUNEKIT_SKIP_CUDA_BUILD=1 skips this (a machine that cannot reach PyPI), and says so.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { SMOLLM2 } from './setup/fetch-model.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const copy = mkdtempSync(join(tmpdir(), 'tunekit-cuda-'));
afterAll(() => rmSync(copy, { recursive: true, force: true }));

it('builds the CUDA backend with TUNEKIT_CUDA=1 and runs without a GPU', (ctx) => {
  if (process.env.TUNEKIT_SKIP_CUDA_BUILD === '1') {
    console.warn('skipped: TUNEKIT_SKIP_CUDA_BUILD=1');
    return ctx.skip();
  }
  for (const entry of ['package.json', 'CMakeLists.txt', 'binding.gyp', 'native', 'scripts']) cpSync(join(root, entry), join(copy, entry), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'), 'dir');
  const env = { ...process.env, TUNEKIT_CUDA: '1', TUNEKIT_CUDA_TOOLKIT_DIR: join(root, '.cache/cuda-toolkit') };
  delete env.CUDACXX; // the toolchain the script installs (13.0), not whatever nvcc this machine has
  const install = spawnSync(process.execPath, ['scripts/install.cjs'], { cwd: copy, encoding: 'utf8', env, maxBuffer: 64 << 20 });
  expect(install.status, (install.stdout + install.stderr).slice(-4000)).toBe(0);
  expect(install.stdout).toMatch(/CUDA build with .*nvcc 13\.0/);
  expect(install.stdout).toMatch(/NCCL header .*nccl\.h/); // NCCL for GPU ranks compiled in
  const addon = join(copy, 'build/Release/tunekit.node');

  // Machine code for sm_80 and sm_90 plus PTX is embedded (the fat binary's section), and the CUDA
  // runtime is linked in statically: the addon needs only libcuda.so.1, at run time.
  if (process.platform === 'linux') {
    expect(execFileSync('readelf', ['-S', '-W', addon], { encoding: 'utf8' })).toMatch(/\.nv_fatbin/);
    expect(execFileSync('readelf', ['-d', '-W', addon], { encoding: 'utf8' })).not.toMatch(/libcudart|libcublas/);
  }

  const probe = `
    const t = await import(${JSON.stringify(join(root, 'dist/lib/index.js'))});
    const { native } = await import(${JSON.stringify(join(root, 'dist/lib/native.js'))});
    const info = t.runtimeInfo();
    const out = { flavour: info.buildFlavour, backends: info.backends, cuda: info.cuda };
    const code = async (f) => { try { await f(); return 'ok'; } catch (e) { return e.code + ': ' + e.message; } };
    out.runOp = await code(() => native.runOp('add', [t.Tensor.from('f32', [2], [1, 2]).handle, t.Tensor.from('f32', [2], [3, 4]).handle], { backend: 'cuda' }));
    out.nccl = await code(() => native.runOp('nccl_check', [], {}));
    out.load = ${existsSync(SMOLLM2)} ? await code(() => t.loadModel(${JSON.stringify(SMOLLM2)}, { device: 'cuda' })) : 'no model';
    const c = await t.gemm(t.Tensor.from('f32', [1, 2], [1, 2]), t.Tensor.from('f32', [2, 1], [3, 4]));
    out.cpuProduct = c.data[0];
    // The GPU's element decoder compiled for the host: each GGUF format against gguf-py's values,
    // the rest against the CPU's decode; the count of elements that differ in any bit.
    const decode = async (w, f) => {
      const p = w.parts(), o = t.Tensor.zeros('f32', [w.shape[0] * w.shape[1]]);
      await native.runOp('decode_weights', [p.data.handle, ...(p.absmax ? [p.absmax.handle] : []), o.handle], { format: f, rows: w.shape[0], cols: w.shape[1], ...(f === 'nf4' ? { blocksize: w.blocksize } : {}), cudaHost: true });
      return o.data;
    };
    const differ = (a, b) => a.reduce((n, v, i) => n + (Object.is(v, b[i]) ? 0 : 1), 0);
    const fx = ${JSON.stringify(join(root, 'test/reference/fixtures/gguf/'))};
    const g = await t.openGguf(fx + 'kquants.gguf'), want = await t.openSafetensors(fx + 'kquants.expected.safetensors');
    out.decode = {};
    for (const f of ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'q5_0', 'q5_1', 'iq4_nl', 'iq4_xs']) out.decode[f] = differ(await decode(await g.read(f), f), (await want.read(f)).data);
    await g.close(), await want.close();
    const source = t.Tensor.from('f32', [16, 256], Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i * 0.37)));
    for (const f of ['nf4', 'q4_0', 'q4_1', 'q8_0', 'bf16', 'f16']) {
      const w = await t.quantizeWeights(source, { format: f });
      out.decode[f] = differ(await decode(w, f), (await w.dequantize()).data);
    }
    console.log(JSON.stringify(out));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: root, encoding: 'utf8', env: { ...process.env, TUNEKIT_ADDON: addon } });
  expect(run.status, run.stderr).toBe(0);
  const out = JSON.parse(run.stdout.trim().split('\n').pop()!);
  expect(out.flavour).toBe('cmake-cuda');
  expect(out.backends).toEqual(['cpu', 'cuda']);
  expect(out.cuda.runtimeVersion).toBe('13.0');
  expect(out.cpuProduct).toBe(11); // the CPU backend is all there
  expect(Object.keys(out.decode)).toHaveLength(15);
  for (const [format, differing] of Object.entries(out.decode)) expect(differing, `${format}: elements the GPU decoder gets wrong`).toBe(0);
  if (out.cuda.error) {
    console.log(`no usable GPU here (${out.cuda.error}): the CUDA build was checked for loading and refusing cleanly`);
    expect(out.cuda.devices).toEqual([]);
    expect(out.runOp).toMatch(/^ERR_TUNEKIT_UNSUPPORTED: The CUDA backend cannot run: /);
    expect(out.nccl).toMatch(/^ERR_TUNEKIT_UNSUPPORTED: The CUDA backend cannot run: /); // compiled in (its header found), refused cleanly
    if (out.load !== 'no model') expect(out.load).toBe(`ERR_TUNEKIT_UNSUPPORTED: device "cuda" cannot be used: ${out.cuda.error}`);
  } else {
    console.log(`GPUs: ${out.cuda.devices.map((d: { device: string; name: string }) => `${d.device} ${d.name}`).join(', ')}`);
    expect(out.runOp).toBe('ok');
  }
}, 1_200_000);
