#!/usr/bin/env node
// Installs the native addon: a matching prebuilt binary from prebuilds/ if one loads, else a build
// from source with cmake-js (CMakeLists.txt), else with the node-gyp that ships with npm
// (binding.gyp, CPU only). Nothing is downloaded: cmake-js takes Node-API headers from the
// node-api-headers package, node-gyp from this Node's own include/ folder when it has one.
// cmake-js is a dev dependency (a clone's `npm install` has it) and an optional peer: a package
// installed with a prebuild that loads needs no build tool at all.
//
// Environment:
//   TUNEKIT_BUILD_FROM_SOURCE=1   ignore prebuilds (same as --from-source)
//   TUNEKIT_BUILD_WITH=cmake|node-gyp   use only that build system
//   TUNEKIT_CUDA=1                build from source with the CUDA backend: nvcc from CUDACXX, else
//                                 PATH, else the CUDA 13.0 wheels scripts/setup-cuda.sh installs
//                                 into .cache/cuda-toolkit; fails rather than build CPU-only
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const log = (msg) => console.log(`tunekit: ${msg}`);
// npm shows a dependency's install output only when it fails: what a build from source is doing
// (a minute or more) also goes to the terminal, when there is one, so that npm is not silent.
const dependencyInstall = process.env.INIT_CWD !== undefined && path.resolve(process.env.INIT_CWD) !== root && process.env.npm_config_foreground_scripts !== 'true';
let tty = null;
if (dependencyInstall) {
  try {
    tty = fs.openSync('/dev/tty', 'w');
  } catch {
    tty = null; // no terminal (CI): npm's own log has the output when it fails
  }
}
const say = (msg) => {
  log(msg);
  if (tty !== null) fs.writeSync(tty, `tunekit: ${msg}\n`);
};
const cuda = process.env.TUNEKIT_CUDA === '1';
const fromSource = cuda || process.argv.includes('--from-source') || process.env.TUNEKIT_BUILD_FROM_SOURCE === '1';
const only = process.env.TUNEKIT_BUILD_WITH;
if (only && only !== 'cmake' && only !== 'node-gyp') {
  console.error(`tunekit: Expected TUNEKIT_BUILD_WITH to be cmake or node-gyp but received ${only}`);
  process.exit(1);
}

function loads(file) {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)}).runtimeInfo()`], { stdio: 'pipe' });
  return r.status === 0;
}

function findPrebuild() {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!fs.existsSync(dir)) return null;
  const file = fs.readdirSync(dir).find((f) => f.endsWith('.node'));
  return file ? path.join(dir, file) : null;
}

function run(cmd, args) {
  log(`${path.basename(cmd)} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  return r.status === 0;
}

function hasCmake() {
  const r = spawnSync('cmake', ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

// The CUDA compiler: CUDACXX, nvcc on PATH, else the toolchain scripts/setup-cuda.sh installs.
function findNvcc() {
  if (process.env.CUDACXX) return process.env.CUDACXX;
  if (spawnSync('nvcc', ['--version'], { stdio: 'ignore' }).status === 0) return 'nvcc';
  say('no nvcc found: installing the CUDA 13.0 compile toolchain from PyPI into .cache/cuda-toolkit (scripts/setup-cuda.sh)');
  const r = spawnSync('bash', [path.join(root, 'scripts/setup-cuda.sh')], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) return null;
  return path.join(r.stdout.toString().trim(), 'bin', 'nvcc');
}

function buildWithCmake() {
  let cli;
  try {
    cli = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    // cmake-js is a build tool, not a dependency: a prebuild needs none of it.
    say('cmake-js is not installed, so the CMake build (CUDA, the MPI engine) is skipped; for it, `npm install cmake-js` beside tunekit and `npm rebuild tunekit`');
    return false;
  }
  if (!hasCmake()) {
    log('cmake was not found on PATH; skipping the CMake build');
    return false;
  }
  const args = [cli, 'compile', '--out', 'build'];
  if (cuda) {
    const nvcc = findNvcc();
    if (!nvcc) return false;
    args.push('--CDTUNEKIT_CUDA=ON', `--CDCMAKE_CUDA_COMPILER=${nvcc}`);
  }
  say(`compiling the native addon with CMake (a minute or more${dependencyInstall ? '; npm install --foreground-scripts shows the compiler' : ''})`);
  return run(process.execPath, args);
}

function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
    path.join(path.dirname(process.execPath), '../share/nodejs/node-gyp/bin/node-gyp.js'),
  ];
  for (const c of candidates) if (c && fs.existsSync(c)) return c;
  try {
    return require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
  } catch {
    return null;
  }
}

function buildWithNodeGyp() {
  const gyp = findNodeGyp();
  if (!gyp) {
    log('node-gyp was not found');
    return false;
  }
  // Every core: a serial build of the addon took ~2 minutes on two Zen 3 cores.
  const args = [gyp, 'rebuild', '--jobs=max'];
  say(`compiling the native addon with node-gyp (CPU only; a minute or more${dependencyInstall ? '; npm install --foreground-scripts shows the compiler' : ''})`);
  // Use this Node's own headers when installed beside it (distribution packages), so no download.
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (fs.existsSync(path.join(prefix, 'include/node/node_api.h')) && fs.existsSync(path.join(prefix, 'include/node/common.gypi'))) {
    args.push(`--nodedir=${prefix}`);
  }
  return run(process.execPath, args);
}

function main() {
  if (!fromSource) {
    const prebuild = findPrebuild();
    if (prebuild && loads(prebuild)) {
      log(`using prebuilt binary ${path.relative(root, prebuild)}`);
      return 0;
    }
    if (prebuild) say(`prebuilt binary ${path.relative(root, prebuild)} does not load here; building from source`);
    else say(`no prebuilt binary for ${process.platform}-${process.arch}; building from source`);
  }
  // node-gyp builds the CPU addon only: with TUNEKIT_CUDA=1 a failed CMake build is an error.
  const builders = [
    ['cmake', buildWithCmake],
    ['node-gyp', buildWithNodeGyp],
  ].filter(([name]) => (!only || name === only) && !(cuda && name === 'node-gyp'));
  for (const [name, build] of builders) {
    if (build() && loads(path.join(root, 'build/Release/tunekit.node'))) {
      say(`built with ${name}: build/Release/tunekit.node`);
      return 0;
    }
    log(`${name} build did not produce a loadable addon`);
  }
  if (cuda) console.error('tunekit: the CUDA build failed (TUNEKIT_CUDA=1); see the compiler output above, or install without TUNEKIT_CUDA for the CPU addon');
  else console.error('tunekit: could not install the native addon (no usable prebuild, CMake and node-gyp builds failed)');
  return 1;
}

process.exit(main());
