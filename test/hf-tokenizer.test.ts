// A Hugging Face tokenizer folder (tokenizer.json, tokenizer_config.json, chat_template.jinja) made by
// test/reference/make_tiny_tokenizer.py: encodings, decodings and the chat rendering equal transformers'.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { tokenizerFromFolder } from '../lib/tokenizer/hf.js';

const dir = fileURLToPath(new URL('./reference/fixtures/tiny-tokenizer/', import.meta.url));
const fx = JSON.parse(readFileSync(`${dir}expected.json`, 'utf8'));

it('encodes, decodes and renders chats like transformers', async () => {
  const t = (await tokenizerFromFolder(dir))!;
  expect(t.eosToken).toBe(fx.eos);
  expect(t.eosTokenId).toBe(fx.eos_id);
  expect(t.vocabSize).toBe(fx.vocab);
  for (const c of fx.cases) {
    expect(t.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
    expect(t.decode(c.ids)).toBe(c.decoded);
  }
  expect(t.applyChatTemplate(fx.chat, { addGenerationPrompt: true })).toBe(fx.rendered);
});

it('is null for a folder without tokenizer.json', async () => {
  expect(await tokenizerFromFolder(fileURLToPath(new URL('./reference/fixtures/tiny-llama/', import.meta.url)))).toBeNull();
});
