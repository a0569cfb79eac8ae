// Records -> token examples, with the loss mask each format asks for:
//   text               every token is a target
//   prompt-completion  only the completion's tokens are targets (as TRL's completion-only loss)
//   messages           rendered through the model's chat template; only assistant turns are targets
//   classification     text + label, for the heads of the next layer (no token targets)
// Each example ends with the tokenizer's EOS (chat templates that close the turn with it keep theirs).
import type { ChatMessage, TextTokenizer } from '../tokenizer/gguf.js';
import { redact, type RedactionCounts } from './clean.js';
import { InvalidRecord, type Row } from './source.js';

export type DataFormat = 'auto' | 'text' | 'prompt-completion' | 'messages' | 'classification' | 'token-classification';
export type ResolvedFormat = Exclude<DataFormat, 'auto'>;

export interface Columns {
  text: string;
  prompt: string;
  completion: string;
  messages: string;
  label: string;
  tokens: string;
  tags: string;
}
export const DEFAULT_COLUMNS: Columns = { text: 'text', prompt: 'prompt', completion: 'completion', messages: 'messages', label: 'label', tokens: 'tokens', tags: 'tags' };

export interface Example {
  inputIds: Int32Array;
  /** Target per position (-100: no loss); the shift to next-token prediction happens in the model. */
  labels: Int32Array;
  /** Classification label as found in the data. */
  label?: string | number;
  /** Token classification: the word's tag on each word's first token, null elsewhere (as transformers aligns labels). */
  tags?: (string | null)[];
  /** Where the record came from ("file:line"). */
  where: string;
}

export interface FormatContext {
  tokenizer: TextTokenizer;
  format: ResolvedFormat;
  columns: Columns;
  /** Longest example in tokens; longer ones are cut (the end is dropped). */
  maxLength: number;
  redaction?: RedactionCounts;
  /** Phone numbers without a country code are read as this region's (ISO 3166 alpha-2). */
  region?: string;
  /** Keep records whose text is empty (they train on the EOS alone). */
  keepEmpty?: boolean;
}

/** Picks the format from the first record's fields. */
export function detectFormat(row: Row, columns: Columns, where: string): ResolvedFormat {
  if (columns.messages in row) return 'messages';
  if (columns.tokens in row && columns.tags in row) return 'token-classification';
  if (columns.prompt in row && columns.completion in row) return 'prompt-completion';
  if (columns.text in row && columns.label in row) return 'classification';
  if (columns.text in row) return 'text';
  throw new InvalidRecord(
    where,
    `cannot tell the data format from fields ${JSON.stringify(Object.keys(row))}; expected "${columns.text}", "${columns.prompt}"+"${columns.completion}", "${columns.messages}" or "${columns.text}"+"${columns.label}" (set format and columns to say which)`,
  );
}

function text(row: Row, name: string, where: string, ctx: FormatContext): string {
  const v = row[name];
  if (v === undefined || v === null) throw new InvalidRecord(where, `missing field "${name}"`);
  if (typeof v !== 'string') throw new InvalidRecord(where, `field "${name}" is ${Array.isArray(v) ? 'an array' : `a ${typeof v}`}; expected a string`);
  return ctx.redaction ? redact(v, ctx.redaction, ctx.region) : v;
}

function messages(row: Row, where: string, ctx: FormatContext): ChatMessage[] {
  const name = ctx.columns.messages;
  let v = row[name];
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v); // CSV cells hold the list as JSON
    } catch {
      throw new InvalidRecord(where, `field "${name}" is a string but not a JSON list of messages`);
    }
  }
  if (!Array.isArray(v) || v.length === 0) throw new InvalidRecord(where, `field "${name}" must be a non-empty list of {role, content} messages`);
  return v.map((m, i) => {
    const role = (m as ChatMessage | null)?.role, content = (m as ChatMessage | null)?.content;
    if (typeof role !== 'string' || typeof content !== 'string') {
      throw new InvalidRecord(where, `field "${name}[${i}]" must be {role: string, content: string}`);
    }
    return { role, content: ctx.redaction ? redact(content, ctx.redaction, ctx.region) : content };
  });
}

/** Concatenates segments, each tokenized on its own, masking those that are not targets. */
function assemble(segments: { ids: number[]; target: boolean }[], maxLength: number, eos: number | null): { inputIds: Int32Array; labels: Int32Array } {
  // Element by element, never push(...ids): a spread of a long record (over ~120k tokens) overflows the stack.
  const ids: number[] = [], labels: number[] = [];
  let last: number | undefined;
  for (const s of segments) {
    for (const id of s.ids) {
      if (ids.length < maxLength) ids.push(id), labels.push(s.target ? id : -100);
      last = id;
    }
  }
  if (eos !== null && last !== eos && ids.length < maxLength) {
    ids.push(eos);
    labels.push(segments[segments.length - 1]!.target ? eos : -100);
  }
  return { inputIds: Int32Array.from(ids), labels: Int32Array.from(labels) };
}

/**
 * The most messages rendered, over all the prefix renders that locate one conversation's assistant
 * turns (quadratic in its length): a few seconds of template rendering. Conversations that fit
 * a usual maxLength stay far below; a 10,000-turn one with a huge maxLength is refused by name.
 */
const MAX_PREFIX_RENDERS = 200_000;

/** The example for one record, or null when it is empty. Throws InvalidRecord for bad records. */
export function toExample(row: Row, where: string, ctx: FormatContext): Example | null {
  const tok = ctx.tokenizer, c = ctx.columns, eos = tok.eosTokenId;
  switch (ctx.format) {
    case 'text': {
      const t = text(row, c.text, where, ctx);
      if (t.trim() === '' && !ctx.keepEmpty) return null;
      return { ...assemble([{ ids: tok.encode(t), target: true }], ctx.maxLength, eos), where };
    }
    case 'prompt-completion': {
      const p = text(row, c.prompt, where, ctx), comp = text(row, c.completion, where, ctx);
      if (comp.trim() === '' && !ctx.keepEmpty) return null;
      const segments = [{ ids: tok.encode(p), target: false }, { ids: tok.encode(comp, { addSpecialTokens: false }), target: true }];
      return { ...assemble(segments, ctx.maxLength, eos), where };
    }
    case 'messages': {
      const msgs = messages(row, where, ctx);
      if (!msgs.some((m) => m.role === 'assistant' && m.content.trim() !== '')) return null;
      // Each assistant turn is the difference between the conversation rendered up to it with a
      // generation prompt and the conversation rendered through it.
      const segments: { ids: number[]; target: boolean }[] = [];
      let done = '', length = 0;
      // Rendering the conversation up to each assistant turn costs the length so far: a long
      // conversation is quadratic. Turns past maxLength tokens are cut anyway, so stop there.
      let rendered = 0; // messages rendered so far, over all the prefix renders
      for (const [i, m] of msgs.entries()) {
        if (length >= ctx.maxLength) break;
        if (m.role !== 'assistant') continue;
        rendered += 2 * i + 1;
        if (rendered > MAX_PREFIX_RENDERS) {
          throw new InvalidRecord(where, `a conversation of ${msgs.length} messages is too long to locate its assistant turns within maxLength ${ctx.maxLength} (each turn renders the conversation up to it: over ${MAX_PREFIX_RENDERS} message renders); split it into shorter conversations or lower maxLength`);
        }
        const before = tok.applyChatTemplate(msgs.slice(0, i), { addGenerationPrompt: true });
        const through = tok.applyChatTemplate(msgs.slice(0, i + 1));
        if (!before.startsWith(done) || !through.startsWith(before)) {
          throw new InvalidRecord(where, 'the chat template does not render the conversation incrementally, so assistant turns cannot be located');
        }
        // BOS once: from the template where it writes it (Llama 3, Gemma), else as the tokenizer adds it.
        const templateBos = tok.bosToken !== null && before.startsWith(tok.bosToken);
        segments.push({ ids: tok.encode(before.slice(done.length), { addSpecialTokens: done === '' && !templateBos }), target: false });
        segments.push({ ids: tok.encode(through.slice(before.length), { addSpecialTokens: false }), target: true });
        length += segments[segments.length - 2]!.ids.length + segments[segments.length - 1]!.ids.length;
        done = through;
      }
      const all = length >= ctx.maxLength ? done : tok.applyChatTemplate(msgs);
      if (all.length > done.length) segments.push({ ids: tok.encode(all.slice(done.length), { addSpecialTokens: false }), target: false });
      // Templates close each turn with their own end token; no extra EOS after the closing newline.
      const closes = tok.eosToken !== null && done.trimEnd().endsWith(tok.eosToken);
      return { ...assemble(segments, ctx.maxLength, closes ? null : eos), where };
    }
    case 'token-classification': {
      const words = row[c.tokens], tags = row[c.tags];
      if (!Array.isArray(words) || !words.every((w) => typeof w === 'string')) throw new InvalidRecord(where, `field "${c.tokens}" must be a list of words`);
      if (!Array.isArray(tags) || tags.length !== words.length) {
        throw new InvalidRecord(where, `field "${c.tags}" must be a list with one tag per word (${words.length} words)`);
      }
      if (words.length === 0) return null;
      // Special tokens the tokenizer adds (a BOS) carry no tag.
      const ids: number[] = tok.encode('', { addSpecialTokens: true });
      const aligned: (string | null)[] = ids.map(() => null);
      words.forEach((w, i) => {
        // Words after the first carry their leading space, as transformers' is_split_into_words does.
        tok.encode(i === 0 ? w : ` ${w}`, { addSpecialTokens: false }).forEach((id, k) => {
          ids.push(id);
          aligned.push(k === 0 ? String(tags[i]) : null);
        });
      });
      const n = Math.min(ids.length, ctx.maxLength);
      return { inputIds: Int32Array.from(ids.slice(0, n)), labels: new Int32Array(n).fill(-100), tags: aligned.slice(0, n), where };
    }
    case 'classification': {
      const t = text(row, c.text, where, ctx);
      const label = row[c.label];
      if (label === undefined || label === null || label === '') throw new InvalidRecord(where, `missing field "${c.label}"`);
      if (typeof label !== 'string' && typeof label !== 'number' && typeof label !== 'bigint' && typeof label !== 'boolean') {
        throw new InvalidRecord(where, `field "${c.label}" must be a string or number`);
      }
      if (t.trim() === '' && !ctx.keepEmpty) return null;
      const ids = tok.encode(t).slice(0, ctx.maxLength);
      return { inputIds: Int32Array.from(ids), labels: new Int32Array(ids.length).fill(-100), label: typeof label === 'bigint' || typeof label === 'boolean' ? String(label) : label, where };
    }
  }
}
