// Text augmentation for small datasets (the word-level operations of EDA, Wei & Zou 2019, without
// synonym lists): random deletion, random swap and random insertion of in-vocabulary words,
// seeded, so the same seed gives the same augmented data everywhere.
import { Random } from './random.js';

export interface AugmentOptions {
  /** Probability of deleting each word (a text keeps at least one). Default 0. */
  deletion?: number;
  /** Word pairs swapped. Default 0. */
  swaps?: number;
  /** Words inserted at random places, drawn from `vocabulary`. Default 0. */
  insertions?: number;
  /** Words insertions draw from. Default: augmentText none; augmentRows the words of the rows' own field. */
  vocabulary?: readonly string[];
}

/** One augmented copy of a text (words split on whitespace, joined by single spaces). */
export function augmentText(text: string, o: AugmentOptions, random: Random): string {
  let words = text.split(/\s+/).filter(Boolean);
  if (words.length === 0) return text;
  if (o.deletion) {
    const kept = words.filter(() => random.next() >= o.deletion!);
    words = kept.length ? kept : [words[random.below(words.length)]!];
  }
  for (let i = 0; i < (o.swaps ?? 0) && words.length > 1; i++) {
    const a = random.below(words.length), b = random.below(words.length);
    [words[a], words[b]] = [words[b]!, words[a]!];
  }
  const vocab = o.vocabulary ?? [];
  for (let i = 0; i < (o.insertions ?? 0) && vocab.length; i++) words.splice(random.below(words.length + 1), 0, vocab[random.below(vocab.length)]!);
  return words.join(' ');
}

/**
 * The rows plus `copies` augmented copies of each (in the `field` column), seeded; the vocabulary
 * for insertions defaults to the words of the rows themselves.
 */
export function augmentRows<T extends Record<string, unknown>>(rows: readonly T[], o: AugmentOptions & { copies?: number; field?: string; seed?: number } = {}): T[] {
  const field = o.field ?? 'text';
  const vocabulary = o.vocabulary ?? [...new Set(rows.flatMap((r) => String(r[field] ?? '').split(/\s+/).filter(Boolean)))].sort();
  const random = new Random(o.seed ?? 0, 31);
  const out: T[] = [...rows];
  for (let c = 0; c < (o.copies ?? 1); c++)
    for (const r of rows) out.push({ ...r, [field]: augmentText(String(r[field] ?? ''), { ...o, vocabulary }, random) });
  return out;
}
