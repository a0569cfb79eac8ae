// A real model no one here made: Gemma 3 270M in Q4_K_M (`npm run fetch-model -- gemma3`, fetched
// by the tests' setup; Gemma terms, never committed). Its tokenizer (Gemma's SentencePiece
// vocabulary from the file), its quantized tensors against gguf-py's decoding (make_gemma3_dequant.py),
// its logits and its greedy continuation against transformers' GGUF
// loader on the same file (test/reference/make_gemma3_real.py).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { relErr } from './reference.js';
import { GEMMA3 } from './setup/fetch-model.js';
import { loadDataset, loadModel, openGguf, openSafetensors, Trainer, Weights, withChatTemplate, type Model, type Tensor } from '../lib/index.js';

const fixtures = fileURLToPath(new URL('./reference/fixtures/gemma3/', import.meta.url));
let cached: Promise<Model> | undefined;
const model = () => (cached ??= loadModel(GEMMA3));

async function expected() {
  const r = await openSafetensors(`${fixtures}expected.safetensors`);
  const out: Record<string, Tensor> = {};
  for (const n of r.names()) out[n] = await r.read(n);
  await r.close();
  return out;
}

describe.skipIf(!existsSync(GEMMA3))('Gemma 3 270M Q4_K_M (a real GGUF file)', () => {
  it('loads as Gemma 3 and encodes text (digits, runs of spaces, punctuation, other scripts, chat turns) as transformers does', async () => {
    const m = await model();
    expect(m.config).toMatchObject({ architecture: 'gemma3', dim: 640, layers: 18, heads: 4, kvHeads: 1, headDim: 256, vocab: 262144, tiedEmbeddings: true });
    const cases = JSON.parse(readFileSync(`${fixtures}tokens.json`, 'utf8')) as { text: string; ids: number[] }[];
    for (const c of cases) {
      const ids = m.tokenizer!.encode(c.text);
      expect(ids, JSON.stringify(c.text)).toEqual(c.ids);
      expect(m.tokenizer!.decode(ids.slice(1)), JSON.stringify(c.text)).toBe(c.text); // after <bos>
    }
  });

  it('decodes its Q4_K, Q6_K, Q5_0 and Q8_0 tensors bit for bit as gguf-py does', async () => {
    const cases = JSON.parse(readFileSync(`${fixtures}dequant.json`, 'utf8')) as { name: string; type: string; count: number; sha256: string; samples: Record<string, number> }[];
    const g = await openGguf(GEMMA3);
    try {
      for (const c of cases) {
        const w = await g.read(c.name);
        expect(w, c.name).toBeInstanceOf(Weights);
        const values = (await (w as Weights).dequantize()).data;
        expect(values.length, c.name).toBe(c.count);
        for (const [i, v] of Object.entries(c.samples)) expect(values[Number(i)], `${c.name}[${i}]`).toBe(v);
        const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
        expect(createHash('sha256').update(bytes).digest('hex'), `${c.name} (${c.type})`).toBe(c.sha256);
      }
    } finally {
      await g.close();
    }
  });

  it('gives transformers\' logits and greedy continuation', async () => {
    const m = await model();
    const fx = await expected();
    const ids = [...fx.ids!.data] as number[];
    const logits = (await m.logits(ids)).data, vocab = 262144;
    const top = fx.top_ids!.data, sample = fx.sample_ids!.data, k = 32, s = sample.length;
    const oursTop = new Float64Array(ids.length * k), oursSample = new Float64Array(ids.length * s), lse = new Float64Array(ids.length);
    for (let p = 0; p < ids.length; p++) {
      const row = logits.subarray(p * vocab, (p + 1) * vocab);
      for (let j = 0; j < k; j++) oursTop[p * k + j] = row[top[p * k + j]!]!;
      for (let j = 0; j < s; j++) oursSample[p * s + j] = row[sample[j]!]!;
      let max = -Infinity, sum = 0;
      for (const v of row) max = Math.max(max, v);
      for (const v of row) sum += Math.exp(v - max);
      lse[p] = max + Math.log(sum);
      let best = 0;
      for (let i = 1; i < vocab; i++) if (row[i]! > row[best]!) best = i;
      expect(best, `argmax at ${p}`).toBe(top[p * k]);
    }
    expect(relErr(oursTop, fx.top_logits!.data)).toBeLessThan(1e-4);
    expect(relErr(oursSample, fx.sample_logits!.data)).toBeLessThan(1e-4);
    expect(relErr(lse, fx.lse!.data)).toBeLessThan(1e-5);
    const steps = [];
    for await (const step of m.generate(ids, { maxTokens: 16 })) steps.push(step.tokenId);
    expect(steps).toEqual([...fx.greedy!.data].slice(0, steps.length));
    expect(steps.length).toBeGreaterThan(8);
  }, 120_000);

  it('QLoRA (its Q4_K / Q5_0 / Q6_K / Q8_0 bases re-quantized to NF4) on a small chat set lowers the validation loss', async () => {
    const m = await loadModel(GEMMA3, { quantize: 'nf4' });
    // The file carries no chat template: Gemma's turn format is given as one.
    const gemmaTurns = "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m.role == 'assistant' else m.role }}\n{{ m.content }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}";
    const tokenizer = withChatTemplate(m.tokenizer!, gemmaTurns);
    expect(tokenizer.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true })).toBe('<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n');
    expect(JSON.parse(tokenizer.files()['tokenizer_config.json']!).chat_template).toBe(gemmaTurns);
    const colors = ['red', 'blue', 'green', 'amber', 'violet', 'teal', 'coral', 'olive', 'ivory', 'jade', 'ruby', 'slate', 'pearl', 'rust', 'mint', 'plum'];
    const records = colors.map((c, i) => ({ messages: [{ role: 'user', content: `What colour is box number ${i + 1}?` }, { role: 'assistant', content: `Box number ${i + 1} is ${c}, as every box in the ${c} row is.` }] }));
    const data = await loadDataset(records, tokenizer, { validation: 4, seed: 1 });
    for await (const e of data.validation!.examples()) {  // <bos> once (the template writes it), then the user turn
      expect([...e.inputIds].slice(0, 3)).toEqual([2, ...tokenizer.encode('<start_of_turn>user', { addSpecialTokens: false })]);
      break;
    }
    m.addLora({ r: 8, alpha: 16, seed: 2 });
    const trainer = new Trainer(m, { maxSteps: 12, batchSize: 4, lr: 2e-3, schedule: 'constant' });
    const before = await trainer.evaluate(data.validation!);
    await trainer.train(data.train);
    const after = await trainer.evaluate(data.validation!);
    expect(after.loss).toBeLessThan(0.8 * before.loss);
  }, 300_000);
});
