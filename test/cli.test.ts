// The command line end to end on the tiny Llama + tokenizer: train from a YAML job (progress,
// metrics JSONL, HTML report, PEFT + GGUF adapters), eval, generate with the adapter, export, and
// a bad config named by file and field.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tinyModelFolder } from './helpers.js';
import { afterAll, expect, it } from 'vitest';

const here = fileURLToPath(new URL('.', import.meta.url));
const cli = join(here, '../dist/lib/cli/main.js');
const work = mkdtempSync(join(tmpdir(), 'tunekit-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const run = (...args: string[]) => promisify(execFile)(process.execPath, [cli, ...args], { cwd: work }).catch((e) => e as { stdout: string; stderr: string; code: number });

const model = join(work, 'model');
tinyModelFolder(model);
writeFileSync(join(work, 'data.jsonl'), Array.from({ length: 30 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `word ${i % 5}` }, { role: 'assistant', content: `the cat ${i % 5}` }] })).join('\n'));

it('trains from a YAML job, then evaluates, generates and exports', async () => {
  writeFileSync(join(work, 'job.yaml'), `model: model
lora:
  targets: auto
  autoTargets: 2
data:
  path: data.jsonl
  validation: 0.2
  test: 0.1
training:
  epochs: 2
  batchSize: 4
  lr: 0.01
  packing: true
  maxLength: 64
output: out
export:
  gguf: true
  merged: true
`);
  const t = await run('train', 'job.yaml');
  expect(t.stderr).toMatch(/validation before training: loss/);
  expect(t.stderr).toMatch(/LoRA targets by importance .*: \w+_proj, \w+_proj\n/);
  expect(t.stderr).toMatch(/\] \d+\/\d+ loss \d+\.\d+ lr .* tok\/s ETA/);
  expect(t.stderr).toMatch(/test: loss/);
  const out = join(work, 'out');
  for (const f of ['adapter/adapter_config.json', 'adapter.gguf', 'merged/config.json', 'metrics.jsonl', 'report.html']) expect(existsSync(join(out, f)), f).toBe(true);
  const report = readFileSync(join(out, 'report.html'), 'utf8');
  // One offline file: the run's records are in it (test/dashboard.test.ts draws it in Chromium).
  const embedded = JSON.parse(/<script type="application\/json" id="tunekit-records">(.*?)<\/script>/s.exec(report)![1]!) as { type: string }[];
  expect(new Set(embedded.map((r) => r.type))).toEqual(new Set(['run', 'eval', 'step', 'stop', 'test', 'result']));
  expect(report).not.toMatch(/https?:\/\/(?!www\.w3\.org)/); // nothing fetched
  const e = await run('eval', 'job.yaml');
  expect(e.stdout).toMatch(/\+ adapter .*adapter/);
  expect(e.stdout).toMatch(/validation\s+loss \d/);
  const g = await run('generate', 'model', '--adapter', 'out/adapter', '--prompt', 'word 1', '--chat', '--max-tokens', '5');
  expect(g.stdout.length).toBeGreaterThan(1);
  const x = await run('export', 'model', '--adapter', 'out/adapter', '--gguf', 'again.gguf');
  expect(x.stdout).toMatch(/GGUF LoRA adapter/);
  expect(readFileSync(join(work, 'again.gguf'))).toEqual(readFileSync(join(out, 'adapter.gguf')));
}, 60_000);

it('names the config file and the bad field', async () => {
  writeFileSync(join(work, 'bad.json'), JSON.stringify({ model: 'model', data: { path: 'data.jsonl' }, training: { gradAccumulation: 0 } }));
  const r = await run('train', 'bad.json');
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/bad\.json: Expected positive integer for training\.gradAccumulation but received 0/);
  const u = await run('fly');
  expect(u.stderr).toMatch(/Unknown command fly/);
});

it('never loses a run: an output folder holding one is refused without --resume or --overwrite', async () => {
  writeFileSync(join(work, 'ck.yaml'), `model: model
data:
  path: data.jsonl
  validation: 0
training:
  maxSteps: 4
  batchSize: 4
  maxLength: 32
  checkpointEvery: 2
output: ck
`);
  const checkpoints = join(work, 'ck', 'checkpoints');
  const fresh = await run('train', 'ck.yaml', '--resume');
  expect(fresh.code).toBe(1);
  expect(fresh.stderr).toMatch(/checkpoints: no checkpoint to resume from\. Run without --resume to start a new run/);
  expect((await run('train', 'ck.yaml')).stderr).toMatch(/done in/);
  expect(existsSync(join(checkpoints, 'checkpoint-4'))).toBe(true);
  const again = await run('train', 'ck.yaml');
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/ck holds a run \(checkpoints up to step 4 in .*checkpoints\)\. Pass --resume to continue it, or --overwrite to delete it and start over/);
  expect(existsSync(join(checkpoints, 'checkpoint-4')), 'nothing deleted').toBe(true);
  const resumed = await run('train', 'ck.yaml', '--resume');
  expect(resumed.stderr).toMatch(/resumed from .*checkpoint-4 at step 4/);
  expect(resumed.stderr).toMatch(/stopped after 4 steps \(max-steps\)/); // it had finished: no step past maxSteps
  expect(existsSync(join(checkpoints, 'checkpoint-5'))).toBe(false);
  expect((await run('train', 'ck.yaml', '--resume', '--overwrite')).stderr).toMatch(/Expected --resume or --overwrite, not both/);
  const over = await run('train', 'ck.yaml', '--overwrite');
  expect(over.stderr).toMatch(/--overwrite: deleting checkpoints up to step 4/);
  expect(over.stderr).not.toMatch(/resumed from/);
}, 60_000);

it("prints each command's help, and names a mistyped flag, a bad number and an unknown command", async () => {
  const h = await run('train', '--help');
  expect(h.code ?? 0).toBe(0);
  expect(h.stdout).toMatch(/^Usage: tunekit train <config\.json\|config\.yaml> \[--resume\] \[--overwrite\]/);
  expect(h.stdout).toMatch(/--overwrite +delete the run in the output folder/);
  expect((await run('help', 'generate')).stdout).toMatch(/--max-tokens N {3}most new tokens \(default 128\)/);
  expect((await run('search', '-h')).stdout).toMatch(/^Usage: tunekit search <config>/);
  const typo = await run('train', 'job.yaml', '--resme');
  expect(typo.code).toBe(1);
  expect(typo.stderr).toMatch(/tunekit: Unknown flag --resme for tunekit train \(did you mean --resume\?\); its flags: --resume, --overwrite, --dashboard, --dashboard-port, --help/);
  expect((await run('generate', 'model', '--prompt', 'hi', '--max-tokens', 'ten')).stderr).toMatch(/Expected a number for --max-tokens but received "ten"/);
  expect((await run('trian', 'job.yaml')).stderr).toMatch(/Unknown command trian \(did you mean train\?\)/);
});

it('says so when nothing was generated', async () => {
  // A copy of the model whose end-of-sequence token is the one it picks first for a prompt (the
  // tiny model's vocabulary is wider than its tokenizer's: take a prompt whose first pick has text).
  const { loadModel } = await import('../lib/index.js');
  const m = await loadModel(model);
  const vocab = JSON.parse(readFileSync(join(model, 'tokenizer.json'), 'utf8')).model.vocab as Record<string, number>;
  let prompt = '', eos: string | undefined;
  for (const p of ['word 1', 'word 2', 'the cat', 'the', 'cat', 'a', 'b', 'hello', 'word', 'x y z']) {
    const first = (await m.generate(p, { maxTokens: 1 }).next()).value!.tokenId;
    eos = Object.keys(vocab).find((k) => vocab[k] === first);
    if (eos) {
      prompt = p;
      break;
    }
  }
  expect(eos, 'a prompt whose first token has text').toBeDefined();
  const copy = join(work, 'eos-first');
  cpSync(model, copy, { recursive: true });
  const config = JSON.parse(readFileSync(join(copy, 'tokenizer_config.json'), 'utf8'));
  writeFileSync(join(copy, 'tokenizer_config.json'), JSON.stringify({ ...config, eos_token: eos }));
  const g = await run('generate', 'eos-first', '--prompt', prompt);
  expect(g.stdout).toBe('\n');
  expect(g.stderr).toMatch(/nothing was generated: the first token the model chose ends the text/);
});
