// Corpus BLEU exactly as sacrebleu computes it with its defaults: the 13a tokenizer (mteval-v13a),
// case-sensitive, n-grams up to 4, reference n-gram counts clipped by the maximum over references,
// the closest reference length (ties: the shorter), brevity penalty, and 'exp' smoothing.

// Python's str.split() whitespace (what sacrebleu splits and strips with), which is not JS's \s:
// it adds U+001C..U+001F and U+0085 and leaves out U+FEFF.
const PY_SPACE = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_SPLIT = new RegExp(`[${PY_SPACE}]+`), PY_RSTRIP = new RegExp(`[${PY_SPACE}]+$`);

/** sacrebleu's 13a tokenizer. */
export function tokenize13a(line: string): string {
  line = line.replaceAll('<skipped>', '').replaceAll('-\n', '').replaceAll('\n', ' ');
  if (line.includes('&')) line = line.replaceAll('&quot;', '"').replaceAll('&amp;', '&').replaceAll('&lt;', '<').replaceAll('&gt;', '>');
  line = ` ${line} `
    .replace(/([{-~[-` -&(-+:-@/])/g, ' $1 ')
    .replace(/([^0-9])([.,])/g, '$1 $2 ')
    .replace(/([.,])([^0-9])/g, ' $1 $2')
    .replace(/([0-9])(-)/g, '$1 $2 ');
  return line.split(PY_SPLIT).filter(Boolean).join(' ');
}

// A segment's tokens as sacrebleu's BLEU takes them: right-stripped (Python's whitespace), then 13a.
const segmentTokens = (segment: string) => tokenize13a(segment.replace(PY_RSTRIP, '')).split(' ').filter(Boolean);

function ngrams(tokens: string[], maxOrder: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let n = 1; n <= maxOrder; n++)
    for (let i = 0; i + n <= tokens.length; i++) {
      const key = `${n}\u0000${tokens.slice(i, i + n).join('\u0001')}`;
      out.set(key, (out.get(key) ?? 0) + 1);
    }
  return out;
}

export interface BleuScore {
  /** 0..100, as sacrebleu reports it. */
  score: number;
  precisions: number[];
  brevityPenalty: number;
  systemLength: number;
  referenceLength: number;
}

/**
 * Corpus BLEU of hypotheses against one or more reference streams (references[k][i] is the k-th
 * reference of hypothesis i), as sacrebleu.corpus_bleu(hypotheses, references).
 */
export function corpusBleu(hypotheses: readonly string[], references: readonly (readonly string[])[], maxOrder = 4): BleuScore {
  const correct = new Array<number>(maxOrder).fill(0), total = new Array<number>(maxOrder).fill(0);
  let sysLen = 0, refLen = 0;
  hypotheses.forEach((hyp, i) => {
    const refNgrams = new Map<string, number>();
    const refLens: number[] = [];
    for (const stream of references) {
      const tokens = segmentTokens(stream[i] ?? '');
      refLens.push(tokens.length);
      for (const [k, c] of ngrams(tokens, maxOrder)) refNgrams.set(k, Math.max(refNgrams.get(k) ?? 0, c));
    }
    const tokens = segmentTokens(hyp);
    let closest = -1, diff = -1;
    for (const len of refLens) {
      const d = Math.abs(tokens.length - len);
      if (diff === -1 || d < diff || (d === diff && len < closest)) [diff, closest] = [d, len];
    }
    sysLen += tokens.length;
    refLen += closest;
    for (const [k, c] of ngrams(tokens, maxOrder)) {
      const n = Number(k.slice(0, k.indexOf('\u0000'))) - 1;
      total[n]! += c;
      correct[n]! += Math.min(c, refNgrams.get(k) ?? 0);
    }
  });
  const brevityPenalty = sysLen < refLen ? (sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0) : 1;
  const precisions = new Array<number>(maxOrder).fill(0);
  if (!correct.some((c) => c > 0)) return { score: 0, precisions, brevityPenalty, systemLength: sysLen, referenceLength: refLen };
  let smooth = 1;
  for (let n = 0; n < maxOrder; n++) {
    if (total[n] === 0) break;
    if (correct[n] === 0) {
      smooth *= 2;
      precisions[n] = 100 / (smooth * total[n]!);
    } else {
      precisions[n] = (100 * correct[n]!) / total[n]!;
    }
  }
  const log = (p: number) => (p === 0 ? -9999999999 : Math.log(p));
  const score = brevityPenalty * Math.exp(precisions.reduce((a, p) => a + log(p), 0) / maxOrder);
  return { score, precisions, brevityPenalty, systemLength: sysLen, referenceLength: refLen };
}
