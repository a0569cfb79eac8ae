// Metrics against the packages people quote them from (fixtures by
// test/reference/make_metric_fixtures.py): sacrebleu's corpus BLEU and 13a tokenizer,
// rouge-score's ROUGE-1/2/L, scikit-learn's accuracy / precision / recall / F1 / confusion matrix.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { classificationReport, corpusBleu, rouge, tokenize13a, TunekitError } from '../lib/index.js';

const fx = JSON.parse(readFileSync(fileURLToPath(new URL('./reference/fixtures/metrics.json', import.meta.url)), 'utf8'));
const close = (a: number, b: number, what: string) => expect(Math.abs(a - b), `${what}: ${a} vs ${b}`).toBeLessThan(1e-9);

describe('BLEU (sacrebleu defaults)', () => {
  it('tokenizes as 13a', () => {
    expect([...fx.hyps, ...fx.refsA].map(tokenize13a)).toEqual(fx.tokenized);
    // Python's whitespace: U+001C..U+001F and U+0085 separate words, U+FEFF does not.
    expect(fx.wsHyps.map(tokenize13a)).toEqual(fx.wsTokenized);
  });
  it('scores corpora with one or two references, and none matching', () => {
    const cases: Record<string, [string[], string[][]]> = {
      one_ref: [fx.hyps, [fx.refsA]], two_refs: [fx.hyps, [fx.refsA, fx.refsB]], first_three: [fx.hyps.slice(0, 3), [fx.refsA.slice(0, 3)]], no_match: [['zzz yyy'], [['aaa bbb']]],
      whitespace: [fx.wsHyps, [fx.wsRefs]], // segments right-stripped first, as sacrebleu does
    };
    for (const [name, [hyps, refs]] of Object.entries(cases)) {
      const ours = corpusBleu(hyps, refs), want = fx.bleu[name];
      close(ours.score, want.score, `${name} score`);
      close(ours.brevityPenalty, want.bp, `${name} bp`);
      expect([ours.systemLength, ours.referenceLength]).toEqual([want.sys_len, want.ref_len]);
      ours.precisions.forEach((p, i) => close(p, want.precisions[i], `${name} p${i + 1}`));
    }
  });
});

describe('ROUGE (rouge-score, no stemming)', () => {
  it('gives rouge1, rouge2 and rougeL for each pair', () => {
    fx.hyps.forEach((h: string, i: number) => {
      const ours = rouge(fx.refsA[i], h);
      for (const k of ['rouge1', 'rouge2', 'rougeL'] as const)
        for (const f of ['precision', 'recall', 'fmeasure'] as const) close(ours[k][f], fx.rouge[i][k][f], `pair ${i} ${k} ${f}`);
    });
  });
});

describe('classification (scikit-learn, zero_division=0)', () => {
  it('accuracy, per-class / macro / micro / weighted P R F1, confusion matrix', () => {
    const c = fx.classification;
    const r = classificationReport(c.truth, c.pred, c.labels);
    close(r.accuracy, c.accuracy, 'accuracy');
    expect(r.confusion).toEqual(c.confusion);
    c.labels.forEach((l: string, i: number) => {
      close(r.perClass[l]!.precision, c.None.precision[i], `${l} precision`);
      close(r.perClass[l]!.recall, c.None.recall[i], `${l} recall`);
      close(r.perClass[l]!.f1, c.None.f1[i], `${l} f1`);
    });
    for (const avg of ['macro', 'micro', 'weighted'] as const)
      for (const f of ['precision', 'recall', 'f1'] as const) close(r[avg][f], c[avg][f], `${avg} ${f}`);
    expect(() => classificationReport(['a'], [])).toThrow(TunekitError);
  });
});
