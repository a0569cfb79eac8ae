// loadDataset: a data source -> tokenized train / validation / test splits, cleaned, seeded.
// In memory (the default) every example is tokenized once and kept as Int32Arrays; the split is a
// seeded permutation with exact sizes. `streaming: true` keeps nothing: each pass re-reads the
// source, a record's split comes from a hash of (seed, record index), and shuffling uses a seeded
// buffer — so a dataset larger than memory trains, with the same batches on every machine.
import { z } from 'zod';
import type { DatasetOptions } from '../option-types.js';
import { TunekitError } from '../errors.js';
import type { TextTokenizer } from '../tokenizer/gguf.js';
import { expected, parseOptions, type Same } from '../validate.js';
import { fingerprint, type RedactionCounts } from './clean.js';
import { DEFAULT_COLUMNS, detectFormat, toExample, type Example, type FormatContext, type ResolvedFormat } from './format.js';
import { hashUnit, Random } from './random.js';
import { InvalidRecord, readRecords, recordError, type DataSource } from './source.js';

const share = z.number().min(0).describe('A fraction of the data (< 1) or a number of examples (>= 1, whole)')
  .refine((v) => v < 1 || Number.isInteger(v), { message: 'expected:fraction < 1 or whole number of examples' });

export const DatasetOptionsSchema = z
  .object({
    format: z.enum(['auto', 'text', 'prompt-completion', 'messages', 'classification', 'token-classification']).default('auto')
      .describe('How records become examples (auto: from the first record\'s fields)'),
    columns: z.object({
      text: z.string().describe('Field of plain text (default "text")'),
      prompt: z.string().describe('Field of the prompt (default "prompt")'),
      completion: z.string().describe('Field of the completion (default "completion")'),
      messages: z.string().describe('Field of the chat messages (default "messages")'),
      label: z.string().describe('Field of the class label (default "label")'),
      tokens: z.string().describe('Token classification: field of the words (default "tokens")'),
      tags: z.string().describe('Token classification: field of the tags, one per word (default "tags")'),
    }).partial().strict().default({})
      .describe('Field names, when they differ from text / prompt / completion / messages / label'),
    maxLength: z.number().int().min(2).default(1024).describe('Longest example in tokens; longer ones are truncated'),
    validation: share.default(0).describe('Held-out validation share: a fraction (< 1) or a count'),
    test: share.default(0).describe('Held-out test share: a fraction (< 1) or a count'),
    seed: z.number().int().min(0).default(42).describe('Seed of the split and the shuffles'),
    shuffle: z.boolean().default(true).describe('Shuffle the training examples every epoch'),
    dropEmpty: z.boolean().default(true).describe('Drop examples whose text (or completion / assistant turns) is empty'),
    dedupe: z.boolean().default(false).describe('Drop exact duplicate records'),
    minTokens: z.number().int().min(0).default(0).describe('Drop examples shorter than this many tokens'),
    maxTokens: z.number().int().min(1).optional().describe('Drop (rather than truncate) examples longer than this many tokens (default: none dropped)'),
    redact: z.boolean().default(false).describe('Replace emails, phone numbers and card numbers with [EMAIL], [PHONE], [CARD] before tokenizing (what it catches and does not: README, "Data")'),
    redactRegion: z.string().regex(/^[A-Z]{2}$/, expected('ISO 3166 two-letter region such as "US" or "GB"')).default('US')
      .describe('With redact: the region whose national phone formats numbers without a country code are read in'),
    skipInvalid: z.boolean().default(false).describe('Count and skip malformed records instead of failing on the first'),
    streaming: z.boolean().default(false).describe('Re-read the source on every pass instead of keeping examples in memory'),
    shuffleBuffer: z.number().int().min(1).default(10000).describe('Streaming: examples held for shuffling'),
    textUnit: z.enum(['line', 'paragraph', 'document']).default('line').describe('Plain-text files: one example per line, paragraph or file'),
    delimiter: z.string().length(1).optional().describe('CSV delimiter (default ",", and tab for .tsv)'),
  })
  .strict();
export type { DatasetOptions };
// The schema accepts exactly the documented type (a compile-time check).
const schemaMatchesType: Same<z.input<typeof DatasetOptionsSchema>, DatasetOptions> = true;
void schemaMatchesType;
type Options = z.output<typeof DatasetOptionsSchema>;

export interface DataStats {
  records: number;
  examples: { train: number; validation: number; test: number };
  tokens: { train: number; validation: number; test: number };
  skipped: { invalid: number; empty: number; duplicate: number; tooShort: number; tooLong: number };
  /** The first few skipped invalid records, as "file:line: reason". */
  errors: string[];
  redacted: RedactionCounts;
}

export interface DataSplit {
  readonly name: 'train' | 'validation' | 'test';
  /** Examples in the split (null while a streaming dataset has not been read through). */
  readonly size: number | null;
  /** The split's examples for one epoch: shuffled by (seed, epoch) for training when shuffle is on. */
  examples(epoch?: number): AsyncIterable<Example>;
}

export interface Dataset {
  readonly format: ResolvedFormat;
  readonly train: DataSplit;
  readonly validation: DataSplit | null;
  readonly test: DataSplit | null;
  readonly stats: DataStats;
}

type SplitName = 'train' | 'validation' | 'test';

/** One pass over the source: cleaned examples with their record index, skips counted in stats. */
async function* examplesOf(source: DataSource, o: Options, tokenizer: TextTokenizer, stats: DataStats, formatBox: { format?: ResolvedFormat }) {
  const seen = o.dedupe ? new Set<string>() : null;
  const ctx: FormatContext = {
    tokenizer, format: formatBox.format ?? 'text', columns: { ...DEFAULT_COLUMNS, ...o.columns }, maxLength: o.maxLength,
    redaction: o.redact ? stats.redacted : undefined, region: o.redactRegion, keepEmpty: !o.dropEmpty,
  };
  let index = -1;
  for await (const { row, where } of readRecords(source, { textUnit: o.textUnit, delimiter: o.delimiter })) {
    index++;
    stats.records++;
    try {
      const bad = recordError(row);
      if (bad) throw bad;
      if (!formatBox.format) formatBox.format = o.format === 'auto' ? detectFormat(row, ctx.columns, where) : o.format;
      ctx.format = formatBox.format;
      if (seen) {
        const key = fingerprint(JSON.stringify(row));
        if (seen.has(key)) {
          stats.skipped.duplicate++;
          continue;
        }
        seen.add(key);
      }
      const ex = toExample(row, where, ctx);
      // Empty records, and examples left without targets (a prompt that fills maxLength).
      if (!ex || (ctx.format !== 'classification' && ctx.format !== 'token-classification' && !ex.labels.some((l) => l !== -100))) {
        stats.skipped.empty++;
        continue;
      }
      if (ex.inputIds.length < o.minTokens) {
        stats.skipped.tooShort++;
        continue;
      }
      if (o.maxTokens !== undefined && ex.inputIds.length > o.maxTokens) {
        stats.skipped.tooLong++;
        continue;
      }
      yield { ex, index };
    } catch (e) {
      if (!(e instanceof InvalidRecord) || !o.skipInvalid) throw e;
      stats.skipped.invalid++;
      if (stats.errors.length < 20) stats.errors.push(e.message);
    }
  }
}

function count(share: number, n: number): number {
  return share < 1 ? Math.round(share * n) : Math.min(share, n);
}

/** Reads, cleans, tokenizes and splits a data source for the given tokenizer. */
export async function loadDataset(source: DataSource, tokenizer: TextTokenizer, options: DatasetOptions = {}): Promise<Dataset> {
  const o = parseOptions(DatasetOptionsSchema, options, 'loadDataset');
  if (o.validation >= 1 !== o.test >= 1 && o.validation > 0 && o.test > 0) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected validation and test both as fractions or both as counts');
  }
  if (o.validation < 1 && o.test < 1 && o.validation + o.test >= 1) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected validation + test < 1 but received ${o.validation + o.test}`);
  }
  const stats: DataStats = {
    records: 0, examples: { train: 0, validation: 0, test: 0 }, tokens: { train: 0, validation: 0, test: 0 },
    skipped: { invalid: 0, empty: 0, duplicate: 0, tooShort: 0, tooLong: 0 }, errors: [], redacted: { emails: 0, phones: 0, cards: 0 },
  };
  const box: { format?: ResolvedFormat } = {};
  return o.streaming ? streamingDataset(source, o, tokenizer, stats, box) : memoryDataset(source, o, tokenizer, stats, box);
}

async function memoryDataset(source: DataSource, o: Options, tokenizer: TextTokenizer, stats: DataStats, box: { format?: ResolvedFormat }): Promise<Dataset> {
  const all: Example[] = [];
  for await (const { ex } of examplesOf(source, o, tokenizer, stats, box)) all.push(ex);
  if (all.length === 0) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `The data holds no usable examples (${stats.records} records read; skipped ${JSON.stringify(stats.skipped)})`);
  const order = new Random(o.seed, 1).shuffle(all.map((_, i) => i));
  const nTest = count(o.test, all.length), nVal = count(o.validation, all.length);
  if (nTest + nVal >= all.length) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected validation + test to leave training examples, but they take ${nTest + nVal} of ${all.length}`);
  }
  // Each split keeps the source order (only the training split is shuffled, per epoch).
  const pick = (ids: number[]) => ids.sort((a, b) => a - b).map((i) => all[i]!);
  const parts: Record<SplitName, Example[]> = {
    test: pick(order.slice(0, nTest)), validation: pick(order.slice(nTest, nTest + nVal)), train: pick(order.slice(nTest + nVal)),
  };
  for (const name of ['train', 'validation', 'test'] as const) {
    stats.examples[name] = parts[name].length;
    stats.tokens[name] = parts[name].reduce((a, e) => a + e.inputIds.length, 0);
  }
  const split = (name: SplitName): DataSplit => ({
    name,
    size: parts[name].length,
    async *examples(epoch = 0) {
      const list = name === 'train' && o.shuffle ? new Random(o.seed, 1000 + epoch).shuffle([...parts[name]]) : parts[name];
      yield* list;
    },
  });
  return { format: box.format!, train: split('train'), validation: nVal ? split('validation') : null, test: nTest ? split('test') : null, stats };
}

async function streamingDataset(source: DataSource, o: Options, tokenizer: TextTokenizer, stats: DataStats, box: { format?: ResolvedFormat }): Promise<Dataset> {
  if (o.validation >= 1 || o.test >= 1) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected validation and test as fractions (< 1) for a streaming dataset');
  }
  // Read the first record now so the format is known (and a bad source fails here).
  for await (const _ of examplesOf(source, o, tokenizer, { ...stats, skipped: { ...stats.skipped }, errors: [], redacted: { ...stats.redacted } }, box)) break;
  const sizes: Record<SplitName, number | null> = { train: null, validation: null, test: null };
  const which = (index: number): SplitName => {
    const u = hashUnit(o.seed, index);
    return u < o.test ? 'test' : u < o.test + o.validation ? 'validation' : 'train';
  };
  const split = (name: SplitName): DataSplit => ({
    name,
    get size() {
      return sizes[name];
    },
    async *examples(epoch = 0) {
      // Every pass recounts; stats describe the latest complete pass of the training split.
      const pass: DataStats = { ...stats, records: 0, skipped: { invalid: 0, empty: 0, duplicate: 0, tooShort: 0, tooLong: 0 }, errors: [], redacted: { emails: 0, phones: 0, cards: 0 } };
      const shuffle = name === 'train' && o.shuffle ? new Random(o.seed, 1000 + epoch) : null;
      const buffer: Example[] = [];
      let n = 0, tokens = 0;
      for await (const { ex, index } of examplesOf(source, o, tokenizer, pass, box)) {
        if (which(index) !== name) continue;
        n++;
        tokens += ex.inputIds.length;
        if (!shuffle) {
          yield ex;
          continue;
        }
        buffer.push(ex);
        if (buffer.length >= o.shuffleBuffer) {
          const j = shuffle.below(buffer.length);
          [buffer[j], buffer[buffer.length - 1]] = [buffer[buffer.length - 1]!, buffer[j]!];
          yield buffer.pop()!;
        }
      }
      if (shuffle) yield* shuffle.shuffle(buffer);
      sizes[name] = n;
      stats.examples[name] = n;
      stats.tokens[name] = tokens;
      if (name === 'train') Object.assign(stats, { records: pass.records, skipped: pass.skipped, errors: pass.errors, redacted: pass.redacted });
    },
  });
  return { format: box.format!, train: split('train'), validation: o.validation ? split('validation') : null, test: o.test ? split('test') : null, stats };
}
