// Classification metrics as scikit-learn computes them (precision_recall_fscore_support with
// zero_division=0, accuracy_score, confusion_matrix): per class, macro (unweighted mean over the
// labels), micro (from the pooled counts) and weighted (by support).
import { TunekitError } from '../errors.js';

export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ClassificationReport {
  labels: (string | number)[];
  accuracy: number;
  perClass: Record<string, ClassScores>;
  macro: Omit<ClassScores, 'support'>;
  micro: Omit<ClassScores, 'support'>;
  weighted: Omit<ClassScores, 'support'>;
  /** confusion[i][j]: examples of labels[i] predicted as labels[j] (rows: truth). */
  confusion: number[][];
}

const div = (a: number, b: number) => (b === 0 ? 0 : a / b);
const f1 = (p: number, r: number) => (p + r === 0 ? 0 : (2 * p * r) / (p + r));

/** Scores predictions against the truth; labels default to the sorted union of both. */
export function classificationReport<T extends string | number>(truth: readonly T[], predicted: readonly T[], labels?: readonly T[]): ClassificationReport {
  if (truth.length !== predicted.length) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected as many predictions as labels but received ${predicted.length} for ${truth.length}`);
  }
  if (truth.length === 0) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected at least one example to score');
  const all = labels ? [...labels] : [...new Set([...truth, ...predicted])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const index = new Map(all.map((l, i) => [l, i]));
  const k = all.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  for (let i = 0; i < truth.length; i++) {
    if (truth[i] === predicted[i]) correct++;
    const t = index.get(truth[i]!), p = index.get(predicted[i]!);
    if (t !== undefined && p !== undefined) confusion[t]![p]!++;
  }
  const perClass: Record<string, ClassScores> = {};
  let tpAll = 0, predAll = 0, trueAll = 0, supportAll = 0;
  const macro = { precision: 0, recall: 0, f1: 0 }, weighted = { precision: 0, recall: 0, f1: 0 };
  all.forEach((label, i) => {
    const tp = confusion[i]![i]!;
    const predicted_ = truth.reduce((n, _, j) => n + (predicted[j] === label ? 1 : 0), 0);
    const support = truth.reduce((n, t) => n + (t === label ? 1 : 0), 0);
    const precision = div(tp, predicted_), recall = div(tp, support), f = f1(precision, recall);
    perClass[String(label)] = { precision, recall, f1: f, support };
    macro.precision += precision / k;
    macro.recall += recall / k;
    macro.f1 += f / k;
    weighted.precision += precision * support;
    weighted.recall += recall * support;
    weighted.f1 += f * support;
    tpAll += tp;
    predAll += predicted_;
    trueAll += support;
    supportAll += support;
  });
  for (const key of ['precision', 'recall', 'f1'] as const) weighted[key] = div(weighted[key], supportAll);
  const mp = div(tpAll, predAll), mr = div(tpAll, trueAll);
  return { labels: all, accuracy: correct / truth.length, perClass, macro, micro: { precision: mp, recall: mr, f1: f1(mp, mr) }, weighted, confusion };
}
