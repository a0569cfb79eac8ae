// A tokenizer from a GGUF file's metadata, as transformers builds it from the same file:
// GPT-2-style byte-level BPE (tokenizer.ggml.model = "gpt2": tokens, merges, control tokens as
// special added tokens; text split as tokenizer.ggml.pre says, gguf-pre.ts) run by @huggingface/tokenizers, and the chat template run by
// @huggingface/jinja. SentencePiece-style ("llama") vocabularies become BPE with byte fallback and
// merges recovered from the scores, as transformers' LlamaTokenizer does from the same file; Gemma's
// as transformers' GemmaTokenizer does (gemma_tokenizer in its GGUF tokenizer mapping: runs of
// spaces respelled as "▁", merges ranked by vocabulary order, spaces normalized, no prefix space).
import { Tokenizer } from '@huggingface/tokenizers';
import { chatTemplate } from './chat-template.js';
import { byteLevelPreTokenizer } from './gguf-pre.js';
import { TunekitError } from '../errors.js';
import type { GgufValue } from '../gguf/format.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface TextTokenizer {
  readonly vocabSize: number;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly unkToken: string | null;
  readonly eosTokenId: number | null;
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Renders messages through the model's chat template (as transformers' apply_chat_template). */
  applyChatTemplate(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
  /** The tokenizer as Hugging Face files (tokenizer.json, tokenizer_config.json, ...), for saving a model folder. */
  files(): Record<string, string>;
}

// Architectures whose SentencePiece vocabulary is Gemma's (transformers' GGUF_SENTENCEPIECE_BUILDERS).
const GEMMA_ARCHITECTURES = ['gemma', 'gemma2', 'gemma3'];

// GGUF token types (llama.cpp's llama_token_type): 3 = control, 4 = user-defined.
const UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4;

function field<T>(metadata: Map<string, GgufValue>, key: string, check: (v: GgufValue) => boolean, what: string): T {
  const v = metadata.get(key);
  if (v === undefined || !check(v)) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `GGUF metadata ${key}: expected ${what}`);
  return v as T;
}

/**
 * Merges a SentencePiece-style vocabulary implies, as transformers' generate_merges derives them:
 * every split of a piece into two pieces of the vocabulary, the best-scored pieces first (ties:
 * longer left part, then longer right part; then vocabulary order).
 */
export function mergesFromScores(vocab: Map<string, number>, scores: Map<string, number>): [string, string][] {
  const out: { l: string; r: string; score: number; ll: number; lr: number }[] = [];
  for (const [piece, score] of scores) {
    const chars = Array.from(piece); // code points, as Python slices
    const local: typeof out = [];
    for (let i = 1; i < chars.length; i++) {
      const l = chars.slice(0, i).join(''), r = chars.slice(i).join('');
      if (vocab.has(l) && vocab.has(r)) local.push({ l, r, score, ll: i, lr: chars.length - i });
    }
    local.sort((a, b) => vocab.get(a.l)! - vocab.get(b.l)! || vocab.get(a.r)! - vocab.get(b.r)!);
    out.push(...local);
  }
  out.sort((a, b) => b.score - a.score || b.ll - a.ll || b.lr - a.lr); // stable, as Python's sorted(reverse=True)
  return out.map((m) => [m.l, m.r]);
}

export function tokenizerFromGguf(metadata: Map<string, GgufValue>, source = 'the GGUF file'): TextTokenizer {
  const model = field<string>(metadata, 'tokenizer.ggml.model', (v) => typeof v === 'string', 'a tokenizer model name');
  if (model !== 'gpt2' && model !== 'llama') {
    throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `GGUF tokenizer model "${model}" is not supported yet; tunekit reads "gpt2" (byte-level BPE) and "llama" (SentencePiece BPE)`);
  }
  const sentencepiece = model === 'llama';
  const stored = field<string[]>(metadata, 'tokenizer.ggml.tokens', (v) => Array.isArray(v) && v.every((t) => typeof t === 'string'), 'an array of strings');
  const arch = metadata.get('general.architecture');
  const gemma = sentencepiece && typeof arch === 'string' && GEMMA_ARCHITECTURES.includes(arch);
  // Gemma files store a token of spaces as spaces, which GemmaTokenizer looks up as "▁"s.
  const tokens = gemma ? stored.map((t) => (t.includes(' ') && t.trim() === '' ? '\u2581'.repeat(t.length) : t)) : stored;
  const types = (metadata.get('tokenizer.ggml.token_type') as number[] | undefined) ?? [];
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  let merges: string[] | [string, string][];
  if (!sentencepiece || metadata.has('tokenizer.ggml.merges')) {
    merges = field<string[]>(metadata, 'tokenizer.ggml.merges', (v) => Array.isArray(v) && v.every((t) => typeof t === 'string'), 'an array of strings');
  } else {
    // Gemma's scores do not follow its merge order; the vocabulary's order does.
    const scores = gemma ? tokens.map((_, i) => -i)
      : field<number[]>(metadata, 'tokenizer.ggml.scores', (v) => Array.isArray(v) && v.length === tokens.length, 'one score per token');
    const byPiece = new Map<string, number>();
    tokens.forEach((t, i) => byPiece.set(t, scores[i]!));
    merges = mergesFromScores(new Map(Object.entries(vocab)), byPiece);
  }
  // SentencePiece files mark <unk> as UNKNOWN (2); transformers registers it as special too.
  // (User-defined tokens only under a name the vocabulary has: transformers skips Gemma's
  // respelled runs of spaces.)
  const added = stored
    .map((content, id) => ({ content, id, type: types[id] }))
    .filter((t) => t.type === CONTROL || (t.type === USER_DEFINED && vocab[t.content] !== undefined) || (sentencepiece && t.type === UNKNOWN))
    .map(({ content, id, type }) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type !== USER_DEFINED }));
  const tokenAt = (key: string): string | null => {
    const id = metadata.get(key);
    return typeof id === 'number' && id >= 0 && id < tokens.length ? tokens[id]! : null;
  };
  const special = {
    bos: tokenAt('tokenizer.ggml.bos_token_id'),
    eos: tokenAt('tokenizer.ggml.eos_token_id'),
    pad: tokenAt('tokenizer.ggml.padding_token_id'),
    unk: tokenAt('tokenizer.ggml.unknown_token_id'),
  };
  // SentencePiece BPE as transformers' LlamaTokenizer builds it: "▁" for spaces and before the
  // first word, byte fallback for what the vocabulary lacks.
  const spm = {
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
  };
  // Gemma: every space becomes "▁" before the model, none is prepended (GemmaTokenizer).
  const gemmaSpm = {
    normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
    pre_tokenizer: { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithPrevious', invert: false },
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }] },
  };
  const json = {
    version: '1.0',
    added_tokens: added,
    normalizer: gemma ? gemmaSpm.normalizer : null,
    pre_tokenizer: gemma ? gemmaSpm.pre_tokenizer : sentencepiece ? spm.pre_tokenizer : byteLevelPreTokenizer(metadata.get('tokenizer.ggml.pre'), source),
    post_processor: null,
    decoder: gemma ? gemmaSpm.decoder : sentencepiece ? spm.decoder : { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: sentencepiece ? special.unk : null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: sentencepiece, byte_fallback: sentencepiece, ignore_merges: false, vocab, merges,
    },
  };
  const config = {
    bos_token: special.bos, eos_token: special.eos, pad_token: special.pad, unk_token: special.unk,
    add_bos_token: metadata.get('tokenizer.ggml.add_bos_token') === true,
    clean_up_tokenization_spaces: false,
  };
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json, config);
  } catch (e) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${source}: the tokenizer.ggml.* metadata do not make a tokenizer (${(e as Error).message})`);
  }
  const templateText = metadata.get('tokenizer.chat_template');
  const template = typeof templateText === 'string' ? chatTemplate(templateText, `${source} (tokenizer.chat_template)`) : null;
  const addBos = config.add_bos_token;
  const bosId = special.bos === null ? null : vocab[special.bos]!;
  return {
    vocabSize: tokens.length,
    bosToken: special.bos,
    eosToken: special.eos,
    padToken: special.pad,
    unkToken: special.unk,
    eosTokenId: special.eos === null ? null : vocab[special.eos]!,
    encode(text, options = {}) {
      const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
      return options.addSpecialTokens !== false && addBos && bosId !== null ? [bosId, ...ids] : ids;
    },
    decode(ids, options = {}) {
      if (ids.length === 0) return ''; // tokenizers.js refuses an empty list
      return tokenizer.decode(ids, { skip_special_tokens: options.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
    },
    files() {
      const cfg = { ...config, tokenizer_class: 'PreTrainedTokenizerFast', ...(typeof templateText === 'string' ? { chat_template: templateText } : {}) };
      return { 'tokenizer.json': JSON.stringify(json), 'tokenizer_config.json': JSON.stringify(cfg, null, 2) };
    },
    applyChatTemplate(messages, options = {}) {
      if (!template) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', 'this model has no tokenizer.chat_template');
      return template.render({
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? false,
        bos_token: special.bos ?? '',
        eos_token: special.eos ?? '',
      });
    },
  };
}
