// `npm run prebuildify` writes prebuilds/<platform>-<arch>/*.node, and a package without build/
// loads it — both through the public entry point and through the install script, which must then
// skip building. Runs in a copy of the package so the build/ other tests use is left alone.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const copy = mkdtempSync(join(tmpdir(), 'tunekit-prebuild-'));
afterAll(() => rmSync(copy, { recursive: true, force: true }));

it('builds a prebuild and loads it when build/ is absent', () => {
  for (const entry of ['package.json', 'tsconfig.json', 'CMakeLists.txt', 'binding.gyp', 'native', 'scripts', 'lib', 'bench']) {
    cpSync(join(root, entry), join(copy, entry), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'), 'dir');

  execFileSync(process.execPath, ['scripts/prebuildify.cjs'], { cwd: copy, stdio: 'pipe' });
  const dir = join(copy, 'prebuilds', `${process.platform}-${process.arch}`);
  const binaries = readdirSync(dir).filter((f) => f.endsWith('.node'));
  expect(binaries).toHaveLength(1);

  rmSync(join(copy, 'build'), { recursive: true, force: true });
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: copy, stdio: 'pipe' });
  const probe = `
    const m = await import(${JSON.stringify(join(copy, 'dist/lib/index.js'))});
    const info = m.runtimeInfo();
    const c = await m.gemm(m.Tensor.from('f32', [1, 2], [1, 2]), m.Tensor.from('f32', [2, 1], [3, 4]));
    const maps = (await import('node:fs')).readFileSync('/proc/self/maps', 'utf8');
    console.log(JSON.stringify({ isa: info.isa, product: c.data[0], fromPrebuild: maps.includes(${JSON.stringify(dir)}) }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: copy, encoding: 'utf8' });
  const result = JSON.parse(out.trim().split('\n').pop()!);
  expect(result.product).toBe(11);
  if (process.platform === 'linux') expect(result.fromPrebuild).toBe(true);

  // The install script takes the prebuild and builds nothing.
  const install = spawnSync(process.execPath, ['scripts/install.cjs'], { cwd: copy, encoding: 'utf8' });
  expect(install.status, install.stderr).toBe(0);
  expect(install.stdout).toMatch(/using prebuilt binary prebuilds\//);
  expect(existsSync(join(copy, 'build'))).toBe(false);
});

const nodePrefix = join(process.execPath, '..', '..');
const localHeaders = existsSync(join(nodePrefix, 'include/node/common.gypi'));

// node-gyp would download headers where this Node has none beside it; CI's Node has them.
it.skipIf(!localHeaders)('falls back to node-gyp (binding.gyp) and builds the same sources', () => {
  const r = spawnSync(process.execPath, ['scripts/install.cjs', '--from-source'], {
    cwd: copy,
    encoding: 'utf8',
    env: { ...process.env, TUNEKIT_BUILD_WITH: 'node-gyp' },
  });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toMatch(/built with node-gyp/);
  const info = execFileSync(process.execPath, ['-e', "console.log(require('./build/Release/tunekit.node').runtimeInfo().buildFlavour)"], {
    cwd: copy,
    encoding: 'utf8',
  });
  expect(info.trim()).toBe('node-gyp-cpu');
});
