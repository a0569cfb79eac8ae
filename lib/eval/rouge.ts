// ROUGE-1, ROUGE-2 and ROUGE-L as Google's rouge-score package computes them without stemming
// (RougeScorer([...], use_stemmer=False)): lowercase, every run of non [a-z0-9] characters is a
// separator, n-gram overlap with clipped counts, and the longest common subsequence for ROUGE-L.
// Stemming is not offered: rouge-score's comes from NLTK's Porter variant.

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

export function rougeTokens(text: string): string[] {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, ' ').split(/\s+/).filter((t) => /^[a-z0-9]+$/.test(t));
}

function score(overlap: number, target: number, prediction: number): RougeScore {
  const precision = prediction ? overlap / prediction : 0, recall = target ? overlap / target : 0;
  return { precision, recall, fmeasure: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0 };
}

function rougeN(target: string[], prediction: string[], n: number): RougeScore {
  const grams = (t: string[]) => {
    const m = new Map<string, number>();
    for (let i = 0; i + n <= t.length; i++) {
      const k = t.slice(i, i + n).join(' ');
      m.set(k, (m.get(k) ?? 0) + 1);
    }
    return m;
  };
  const a = grams(target), b = grams(prediction);
  let overlap = 0;
  for (const [k, c] of a) overlap += Math.min(c, b.get(k) ?? 0);
  const count = (m: Map<string, number>) => [...m.values()].reduce((x, y) => x + y, 0);
  return score(overlap, count(a), count(b));
}

function lcs(a: string[], b: string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    const row = new Array<number>(b.length + 1).fill(0);
    for (let j = 1; j <= b.length; j++) row[j] = a[i - 1] === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, row[j - 1]!);
    prev = row;
  }
  return prev[b.length]!;
}

/** rouge1, rouge2 and rougeL of one prediction against its target (scorer.score(target, prediction)). */
export function rouge(target: string, prediction: string): { rouge1: RougeScore; rouge2: RougeScore; rougeL: RougeScore } {
  const t = rougeTokens(target), p = rougeTokens(prediction);
  return { rouge1: rougeN(t, p, 1), rouge2: rougeN(t, p, 2), rougeL: score(lcs(t, p), t.length, p.length) };
}

/** Mean of each score over pairs (what a corpus-level ROUGE usually reports). */
export function meanRouge(targets: readonly string[], predictions: readonly string[]): { rouge1: RougeScore; rouge2: RougeScore; rougeL: RougeScore } {
  const zero = () => ({ precision: 0, recall: 0, fmeasure: 0 });
  const sum = { rouge1: zero(), rouge2: zero(), rougeL: zero() };
  targets.forEach((t, i) => {
    const s = rouge(t, predictions[i] ?? '');
    for (const k of ['rouge1', 'rouge2', 'rougeL'] as const)
      for (const f of ['precision', 'recall', 'fmeasure'] as const) sum[k][f] += s[k][f] / targets.length;
  });
  return sum;
}
