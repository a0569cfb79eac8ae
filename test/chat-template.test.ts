// Chat templates come from model files, so they are rendered with a budget (lib/tokenizer/chat-template.ts):
// hostile ones — a huge range(), nested loops, a string doubling itself — fail with a TunekitError
// naming the file instead of ending the process or running for hours; real ones render exactly
// as @huggingface/jinja renders them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { afterAll, describe, expect, it } from 'vitest';
import { chatTemplate } from '../lib/tokenizer/chat-template.js';
import { tokenizerFromFolder } from '../lib/tokenizer/hf.js';
import { tinyModelFolder } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'tunekit-template-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const messages = [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }];

describe('chat templates from model files', () => {
  it('refuses a range() too long to build, before building it', () => {
    const t = chatTemplate('{% for i in range(10000000000) %}x{% endfor %}', 'model/chat_template.jinja');
    expect(() => t.render({ messages })).toThrow(expect.objectContaining({
      code: 'ERR_TUNEKIT_CORRUPT_FILE', message: expect.stringMatching(/^model\/chat_template\.jinja: the chat template needed range\(\) of 10000000000 items/),
    }));
  });

  it('stops nested loops at the step budget', { timeout: 30_000 }, () => {
    const t = chatTemplate('{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}', 'f.jinja');
    const t0 = performance.now();
    expect(() => t.render({ messages })).toThrow(/f\.jinja: the chat template needed more than (1,000,000 evaluation steps|10 s)/);
    expect(performance.now() - t0).toBeLessThan(20_000);
  });

  it('stops a string that doubles itself', () => {
    const t = chatTemplate("{% set s = namespace(v='ab') %}{% for i in range(40) %}{% set s.v = s.v + s.v %}{% endfor %}{{ s.v }}", 'f.jinja');
    expect(() => t.render({ messages })).toThrow(/f\.jinja: the chat template needed a string of more than/);
  });

  it('names the file when the template does not parse or refuses the messages', () => {
    expect(() => chatTemplate('{% for %}', 'f.jinja')).toThrow(expect.objectContaining({ code: 'ERR_TUNEKIT_CORRUPT_FILE', message: expect.stringMatching(/^f\.jinja: the chat template does not parse/) }));
    const t = chatTemplate("{{ raise_exception('Conversation roles must alternate user/assistant') }}", 'f.jinja');
    expect(() => t.render({ messages })).toThrow(expect.objectContaining({ code: 'ERR_TUNEKIT_INVALID_ARGUMENT', message: 'f.jinja: the chat template refused the messages: Conversation roles must alternate user/assistant' }));
  });

  it('renders a real template as the library does, and a loaded tokenizer goes through the budget', async () => {
    const dir = join(work, 'model');
    tinyModelFolder(dir);
    const tok = (await tokenizerFromFolder(dir))!;
    const text = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
    const source = (await import('node:fs')).readFileSync(join(dir, 'chat_template.jinja'), 'utf8');
    expect(text).toBe(new Template(source).render({ messages, add_generation_prompt: true, bos_token: tok.bosToken ?? '', eos_token: tok.eosToken ?? '' }));
    expect(chatTemplate('{{ range(3) | join(",") }} {{ range(1, 7, 2) | join(",") }}', 'f').render({})).toBe('0,1,2 1,3,5');
    writeFileSync(join(dir, 'chat_template.jinja'), '{% for i in range(99999999999) %}{% endfor %}');
    const hostile = (await tokenizerFromFolder(dir))!;
    expect(() => hostile.applyChatTemplate(messages)).toThrow(new RegExp(`^${join(dir, 'chat_template.jinja').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: the chat template needed range`));
  });
});
