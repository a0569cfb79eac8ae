// `npm run fuzz -- [--seconds N] [--cases N] [--seed S] [--targets a,b] [--workers W]`: a seeded
// mutation campaign against tunekit's input layer (fuzz/targets.mjs). Each case runs in a worker
// process under an address-space cap (ulimit -v) and a timeout; a worker that dies or goes silent
// is replaced and the case counted, and each worker is replaced after --cases-per-worker cases
// (default 100; 1 runs every case in a process of its own). Every case ends as one of:
//   tunekit   refused with a TunekitError (what hostile input must get)
//   accepted  loaded and ran
//   other     refused with an error that is not a TunekitError      (a defect)
//   signal    the process died (abort, segfault, fatal OOM)          (a defect)
//   hang      no answer within the timeout                           (a defect)
//   wrong     a safetensors file accepted that the reference implementation refuses (a defect;
//             checked when a Python with the safetensors package is found: TUNEKIT_FUZZ_PYTHON,
//             bench/peers/.venv, or .cache/fuzz-python beside python3)
// The same seed gives the same cases. Exit status 1 when any defect was found; --keep DIR keeps
// the defective cases' files.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TARGETS } from './targets.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' }, cases: { type: 'string' }, seed: { type: 'string', default: '1' },
    targets: { type: 'string' }, workers: { type: 'string' }, timeout: { type: 'string', default: '20' },
    'memory-mib': { type: 'string', default: '12288' }, keep: { type: 'string' }, json: { type: 'string' },
    case: { type: 'string' }, 'cases-per-worker': { type: 'string', default: '100' },
  },
});
const { Random } = await import(new URL('../dist/lib/index.js', import.meta.url).href);
const targets = args.targets ? args.targets.split(',') : Object.keys(TARGETS);
for (const t of targets) if (!TARGETS[t]) throw new Error(`unknown target ${t}; targets: ${Object.keys(TARGETS).join(', ')}`);
const seconds = Number(args.seconds), maxCases = args.cases ? Number(args.cases) : Infinity, seed = Number(args.seed);
const timeoutMs = Number(args.timeout) * 1000, workers = Number(args.workers ?? Math.min(2, availableParallelism()));
const work = mkdtempSync(join(tmpdir(), 'tunekit-fuzz-'));
const deadline = Date.now() + seconds * 1000;

const KINDS = ['tunekit', 'accepted', 'other', 'signal', 'hang', 'wrong'];
const tally = Object.fromEntries(targets.map((t) => [t, Object.fromEntries(KINDS.map((k) => [k, 0]))]));
const defects = [];
const acceptedSafetensors = [];

// A finished case's files are deleted a few cases later, not at once: a file closed after the
// answer (a stream's last read) must still be there.
const doomed = [];
function record(c, kind, detail) {
  tally[c.target][kind]++;
  if (kind === 'accepted' && c.target === 'safetensors') acceptedSafetensors.push(c);
  else if (kind !== 'tunekit' && kind !== 'accepted') defects.push({ ...c, kind, detail });
  else doomed.push(c.dir);
  while (doomed.length > 16) rmSync(doomed.shift(), { recursive: true, force: true });
}

// A worker: a Node process under `ulimit -v`, answering cases over IPC.
function startWorker() {
  const kib = Number(args['memory-mib']) * 1024;
  const child = spawn('/bin/sh', ['-c', `ulimit -v ${kib} 2>/dev/null; exec "$0" "$@"`, process.execPath, join(root, 'fuzz/worker.mjs')], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'], cwd: work,
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
  return new Promise((resolve) => child.once('message', () => resolve({ child, stderr: () => stderr, cases: 0 })));
}

let next = 0;
function nextCase() {
  if (next >= maxCases || Date.now() > deadline) return null;
  const id = next++, target = targets[id % targets.length];
  const dir = join(work, `case-${id}`);
  const options = TARGETS[target].make(new Random(seed, id), dir) ?? {};
  return { id, target, dir, options: typeof options === 'object' ? options : {} };
}

async function lane() {
  let w = await startWorker();
  for (let c = nextCase(); c; c = nextCase()) {
    const answer = await new Promise((resolve) => {
      const timer = setTimeout(() => done({ kind: 'hang', detail: `no answer in ${timeoutMs / 1000} s` }), timeoutMs);
      const done = (answer) => (clearTimeout(timer), w.child.off('message', onMessage), w.child.off('exit', onExit), resolve(answer));
      const onMessage = (m) => m.id === c.id && done(m);
      const onExit = (code, signal) => done({ kind: 'signal', detail: `exit ${signal ?? code}: ${w.stderr().slice(-600)}` });
      w.child.on('message', onMessage);
      w.child.once('exit', onExit);
      w.child.send({ id: c.id, target: c.target, dir: c.dir, options: c.options });
    });
    record(c, answer.kind, answer.detail ?? (answer.kind === 'other' ? `${answer.message}\n${answer.stack}` : answer.code));
    // A new worker after a death, and every --cases-per-worker cases (1: each case in a fresh
    // process), so that what one case leaves behind reaches only a few after it.
    if (answer.kind === 'hang' || answer.kind === 'signal' || ++w.cases >= Number(args['cases-per-worker'])) {
      w.child.kill('SIGKILL');
      w = await startWorker();
    }
  }
  w.child.kill('SIGKILL');
}

// --case N: that one case, in this process, with the whole error (to debug what a campaign found).
if (args.case !== undefined) {
  next = Number(args.case);
  const c = nextCase();
  console.log(`case ${c.id}: ${c.target} in ${c.dir}`);
  const api = await import(new URL('../dist/lib/index.js', import.meta.url).href);
  try {
    await TARGETS[c.target].run(api, c.dir, c.options);
    console.log('accepted');
  } catch (e) {
    console.log(e instanceof api.TunekitError ? `TunekitError ${e.code}: ${e.message.slice(0, 2000)}` : e);
  }
  await new Promise((resolve) => setTimeout(resolve, 500)); // a late rejection still surfaces
  process.exit(0);
}

const started = Date.now();
await Promise.all(Array.from({ length: workers }, lane));

// The reference's verdict on the safetensors files tunekit accepted.
function referencePython() {
  const candidates = [process.env.TUNEKIT_FUZZ_PYTHON, join(root, 'bench/peers/.venv/bin/python')].filter(Boolean);
  for (const py of candidates) if (existsSync(py) && spawnSync(py, ['-c', 'import safetensors'], { stdio: 'ignore' }).status === 0) return { py, env: process.env };
  const target = join(root, '.cache/fuzz-python');
  const env = { ...process.env, PYTHONPATH: target };
  if (spawnSync('python3', ['-c', 'import safetensors'], { stdio: 'ignore', env }).status === 0) return { py: 'python3', env };
  return null;
}
const ref = acceptedSafetensors.length ? referencePython() : null;
let reference = acceptedSafetensors.length ? 'not checked (no Python with the safetensors package; see fuzz/run.mjs)' : 'none to check (no safetensors case was accepted)';
if (ref) {
  const files = acceptedSafetensors.map((c) => join(c.dir, 'model.safetensors'));
  const out = spawnSync(ref.py, [join(root, 'fuzz/reference.py')], { input: files.join('\n'), encoding: 'utf8', env: ref.env, maxBuffer: 64 << 20 });
  if (out.status !== 0) throw new Error(`fuzz/reference.py failed: ${out.stderr}`);
  const refused = new Map(out.stdout.split('\n').filter(Boolean).map((l) => l.split('\t')));
  for (const c of acceptedSafetensors) {
    const why = refused.get(join(c.dir, 'model.safetensors'));
    if (why) tally.safetensors.accepted--, tally.safetensors.wrong++, defects.push({ ...c, kind: 'wrong', detail: `the reference refuses it: ${why}` });
    else rmSync(c.dir, { recursive: true, force: true });
  }
  reference = `checked by ${ref.py} (safetensors ${spawnSync(ref.py, ['-c', 'import safetensors; print(safetensors.__version__)'], { encoding: 'utf8', env: ref.env }).stdout.trim()})`;
}

const total = Object.values(tally).reduce((n, t) => n + KINDS.reduce((a, k) => a + t[k], 0), 0);
const rows = [['target', ...KINDS], ...targets.map((t) => [t, ...KINDS.map((k) => String(tally[t][k]))]), ['all', ...KINDS.map((k) => String(targets.reduce((a, t) => a + tally[t][k], 0)))]];
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
console.log(`tunekit fuzz: seed ${seed}, ${total} cases in ${((Date.now() - started) / 1000).toFixed(0)} s on ${workers} workers of ${args['cases-per-worker']} cases each (timeout ${timeoutMs / 1000} s, ulimit -v ${args['memory-mib']} MiB); safetensors acceptances ${reference}`);
for (const r of rows) console.log(r.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  '));
for (const d of defects.slice(0, 20)) console.log(`\n${d.kind} in ${d.target} case ${d.id} (seed ${seed}):\n${String(d.detail).slice(0, 1200)}`);
if (args.keep && defects.length) {
  mkdirSync(args.keep, { recursive: true });
  for (const d of defects) cpSync(d.dir, join(args.keep, `${d.target}-${d.id}-${d.kind}`), { recursive: true });
  console.log(`\nthe ${defects.length} defective cases are in ${args.keep}`);
}
if (args.json) writeFileSync(args.json, JSON.stringify({ seed, total, tally, defects: defects.map(({ dir, ...d }) => d) }, null, 2));
rmSync(work, { recursive: true, force: true });
process.exitCode = defects.length ? 1 : 0;
