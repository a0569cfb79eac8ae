// `npm run prebuildify` writes prebuilds/<platform>-<arch>/*.node, and a package without build/
// loads it — both through the public entry point and through the install script, which must then
// skip building. Runs in a copy of the package so the build/ other tests use is left alone.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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
}, 300_000); // a CMake build of the whole addon and its MPI engine: 138 s on a loaded 2-core Zen 3

// Installed as a dependency from its tarball, with a prebuild that loads: no build tool comes
// along (cmake-js is a dev dependency and an optional peer), nothing is compiled, and it works.
// The dependencies come from npm's cache where it has them (the clone's own npm install filled
// it with their tarballs), else from the registry; without one, the test is skipped and says so.
it('installs as a dependency with its prebuild and no build tools', (ctx) => {
  const packed = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', copy], { cwd: copy, encoding: 'utf8' }).trim().split('\n').pop()!;
  const consumer = join(copy, 'consumer');
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module' }));
  const npm = spawnSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--omit=dev', '--foreground-scripts', join(copy, packed)], { cwd: consumer, encoding: 'utf8' });
  if (npm.status !== 0 && /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH/.test(npm.stderr)) {
    console.warn(`skipped: npm could not reach the registry for the dependencies npm's cache lacks\n${npm.stderr.slice(0, 500)}`);
    return ctx.skip();
  }
  expect(npm.status, npm.stdout + npm.stderr).toBe(0);
  expect(npm.stdout).toMatch(/tunekit: using prebuilt binary prebuilds\//);
  const installed = readdirSync(join(consumer, 'node_modules'));
  expect(installed).toContain('tunekit');
  for (const tool of ['cmake-js', 'prebuildify', 'node-gyp', 'typescript', 'vitest']) expect(installed, tool).not.toContain(tool);
  expect(existsSync(join(consumer, 'node_modules/tunekit/build'))).toBe(false);
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', "const m = await import('tunekit'); console.log(m.runtimeInfo().backends.join())"], { cwd: consumer, encoding: 'utf8' });
  expect(out.trim()).toMatch(/cpu/);
}, 180_000);

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
}, 300_000); // the whole addon from source: 131 s on a 2-core Zen 3 under load, past vitest's 120 s default
