// A tokenizer from a Hugging Face folder: tokenizer.json (+ tokenizer_config.json for special
// tokens, and the chat template from there or chat_template.jinja), run by @huggingface/tokenizers
// and @huggingface/jinja.
import { existsSync } from 'node:fs';
import { readTextFile } from '../files.js';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { chatTemplate } from './chat-template.js';
import { TunekitError } from '../errors.js';
import type { TextTokenizer } from './gguf.js';

function tokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

/**
 * How many times longer a text can come out of the normalizer than it went in, at most: each
 * Replace can grow it by its content's length over its pattern's (a regex, or an empty pattern,
 * counted as content + 1), and a Sequence multiplies them. Unicode normalizers are bounded and
 * idempotent, and Prepend / Strip add or remove a little, so they count 1.
 */
function normalizerGrowth(n: unknown, depth = 0): number {
  if (typeof n !== 'object' || n === null || depth > 64) return 1;
  const node = n as { type?: string; normalizers?: unknown[]; pattern?: { String?: string; Regex?: string }; content?: string };
  if (node.type === 'Sequence') return (node.normalizers ?? []).reduce<number>((g, x) => g * normalizerGrowth(x, depth + 1), 1);
  if (node.type === 'Replace') {
    const content = typeof node.content === 'string' ? node.content.length : 0;
    const pattern = typeof node.pattern?.String === 'string' ? node.pattern.String.length : 0;
    return pattern > 0 ? Math.max(1, content / pattern) : content + 1;
  }
  return 1;
}
/** The most a normalizer may grow a text (a vocabulary's usual ones: 1). */
const MAX_NORMALIZER_GROWTH = 64;

/**
 * How many copies of the input a post-processor's templates emit: TemplateProcessing repeats the
 * sequence once per {Sequence} entry (a real single template has one, a pair template two), and a
 * Sequence of processors applies each in turn. A template listing the sequence 74,000 times makes
 * every encoding that many times longer (and tokenizers.js took minutes on a six-token text).
 */
function postProcessorCopies(p: unknown, depth = 0): number {
  if (typeof p !== 'object' || p === null || depth > 64) return 1;
  const node = p as { type?: string; processors?: unknown[]; single?: unknown; pair?: unknown };
  if (node.type === 'Sequence') return (Array.isArray(node.processors) ? node.processors : []).reduce<number>((n, x) => n * postProcessorCopies(x, depth + 1), 1);
  if (node.type !== 'TemplateProcessing') return 1;
  const copies = (template: unknown) => (Array.isArray(template) ? template.filter((piece) => typeof piece === 'object' && piece !== null && 'Sequence' in piece).length : 0);
  return Math.max(1, copies(node.single), copies(node.pair) / 2);
}
const MAX_POST_PROCESSOR_COPIES = 4;

/** The folder's tokenizer, or null when it has no tokenizer.json. */
export async function tokenizerFromFolder(dir: string): Promise<TextTokenizer | null> {
  const file = join(dir, 'tokenizer.json');
  if (!existsSync(file)) return null;
  let json: Record<string, unknown>, config: Record<string, unknown> = {};
  const raw: Record<string, string> = {};
  try {
    raw['tokenizer.json'] = await readTextFile(file);
    json = JSON.parse(raw['tokenizer.json']);
    const cfgFile = join(dir, 'tokenizer_config.json');
    if (existsSync(cfgFile)) config = JSON.parse((raw['tokenizer_config.json'] = await readTextFile(cfgFile)));
    for (const extra of ['special_tokens_map.json', 'chat_template.jinja']) if (existsSync(join(dir, extra))) raw[extra] = await readTextFile(join(dir, extra));
  } catch (e) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${dir}: tokenizer files are not valid JSON (${(e as Error).message})`);
  }
  for (const [name, v] of [['tokenizer.json', json], ['tokenizer_config.json', config]] as const) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${join(dir, name)}: expected a JSON object`);
  }
  const growth = normalizerGrowth(json.normalizer);
  if (growth > MAX_NORMALIZER_GROWTH) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: its normalizer can make a text ${growth > 1e15 ? growth.toExponential(1) : growth} times longer (Replace rules that feed each other); tunekit refuses more than ${MAX_NORMALIZER_GROWTH}, so that encoding stays bounded`);
  }
  const copies = postProcessorCopies(json.post_processor);
  if (copies > MAX_POST_PROCESSOR_COPIES) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: its post_processor emits each text ${copies} times (a template that lists the sequence over and over); tunekit refuses more than ${MAX_POST_PROCESSOR_COPIES}, so that encoding stays bounded`);
  }
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json, config);
  } catch (e) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: not a tokenizer tokenizers.js can build (${(e as Error).message})`);
  }
  const rawVocab = (json.model as { vocab?: unknown } | undefined)?.vocab;
  const vocab = (typeof rawVocab === 'object' && rawVocab !== null && !Array.isArray(rawVocab) ? rawVocab : {}) as Record<string, number>;
  const added = (Array.isArray(json.added_tokens) ? json.added_tokens : []).filter((a): a is { id: number; content: string } =>
    typeof a === 'object' && a !== null && Number.isInteger((a as { id?: unknown }).id) && typeof (a as { content?: unknown }).content === 'string');
  // tokenizers.js checks much of a tokenizer.json only when it first encodes: its failures there
  // (a TypeError on a malformed field) name the file, as a failure to build it does.
  const guarded = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof TunekitError) throw e;
      throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: the tokenizer failed to ${what} (${(e as Error).message?.slice(0, 200)}); the file is damaged or uses something tokenizers.js does not support`, { cause: e });
    }
  };
  const idOf = (t: string | null) => (t === null ? null : (vocab[t] ?? added.find((a) => a.content === t)?.id ?? null));
  const special = { bos: tokenText(config.bos_token), eos: tokenText(config.eos_token), pad: tokenText(config.pad_token), unk: tokenText(config.unk_token) };
  // transformers >= 4.43 may keep the template in chat_template.jinja beside the config.
  const templateFile = join(dir, 'chat_template.jinja');
  const templateText = existsSync(templateFile) ? await readTextFile(templateFile) : typeof config.chat_template === 'string' ? config.chat_template : null;
  const template = templateText === null ? null : chatTemplate(templateText, existsSync(templateFile) ? templateFile : join(dir, 'tokenizer_config.json'));
  return {
    vocabSize: Math.max(Object.keys(vocab).length, ...added.map((a) => a.id + 1)),
    bosToken: special.bos,
    eosToken: special.eos,
    padToken: special.pad,
    unkToken: special.unk,
    eosTokenId: idOf(special.eos),
    encode(text, options = {}) {
      return guarded('encode a text', () => tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens !== false }).ids);
    },
    decode(ids, options = {}) {
      if (ids.length === 0) return '';
      return guarded('decode token ids', () => tokenizer.decode(ids, { skip_special_tokens: options.skipSpecialTokens ?? false }));
    },
    files() {
      return { ...raw };
    },
    applyChatTemplate(messages, options = {}) {
      if (!template) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${dir}: tokenizer_config.json has no chat_template`);
      return template.render({ messages, add_generation_prompt: options.addGenerationPrompt ?? false, bos_token: special.bos ?? '', eos_token: special.eos ?? '' });
    },
  };
}
