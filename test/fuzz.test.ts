// The hostile-input campaign (issue #14), short and seeded as CI runs it: `npm run fuzz` over
// every target (safetensors single and sharded, GGUF, Hugging Face config / tokenizer / chat
// template, JSONL, CSV, Parquet), each case in a worker process under ulimit -v and a timeout.
// No case may end in a signal, a hang, an error that is not a TunekitError, or a safetensors file
// accepted that the reference implementation (Python safetensors) refuses.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Python's safetensors (the reference), installed into .cache/fuzz-python when no Python has it. */
function ensureReference(): string | null {
  const venv = join(root, 'bench/peers/.venv/bin/python');
  if (spawnSync(venv, ['-c', 'import safetensors'], { stdio: 'ignore' }).status === 0) return null;
  const target = join(root, '.cache/fuzz-python');
  const env = { ...process.env, PYTHONPATH: target };
  if (spawnSync('python3', ['-c', 'import safetensors'], { stdio: 'ignore', env }).status === 0) return null;
  const pip = spawnSync('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--root-user-action=ignore', '--target', target, 'safetensors==0.8.0'], { encoding: 'utf8' });
  return pip.status === 0 ? null : `the reference (Python safetensors) could not be installed: ${(pip.stderr || pip.error?.message || '').slice(0, 300)}`;
}

it('survives a seeded campaign of 2,700 hostile cases with TunekitErrors only', () => {
  const missing = ensureReference();
  if (missing) console.warn(`fuzz: acceptances are not compared with the reference: ${missing}`);
  const dir = mkdtempSync(join(tmpdir(), 'tunekit-fuzz-test-'));
  try {
    const run = spawnSync(process.execPath, ['fuzz/run.mjs', '--cases', '2700', '--seconds', '900', '--seed', '1', '--json', join(dir, 'result.json')], { cwd: root, encoding: 'utf8' });
    console.log(run.stdout.split('\n').slice(0, 13).join('\n'));
    const result = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as { total: number; tally: Record<string, Record<string, number>>; defects: { target: string; id: number; kind: string; detail: string }[] };
    expect(result.total).toBe(2700);
    expect(result.defects.map((d) => `${d.kind} in ${d.target} case ${d.id}: ${d.detail.slice(0, 300)}`)).toEqual([]);
    expect(run.status, run.stderr).toBe(0);
    // The campaign reaches past the parsers' first checks: every target accepts some cases and refuses others.
    for (const [target, t] of Object.entries(result.tally)) {
      expect(t.tunekit, target).toBeGreaterThan(0);
      expect(t.accepted, target).toBeGreaterThan(0);
    }
    if (!missing) expect(run.stdout).toMatch(/safetensors acceptances checked by/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 900_000);
