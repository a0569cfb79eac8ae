// Each rank's share of a global micro-batch. Every rank builds the same global micro-batch (the
// batch a single-process run with batchSize × world rows would take) and keeps its own rows, so
// the examples of global batch k are those of the single-process run, whatever the world size
// (streaming datasets included: every rank reads the stream in the same order).
import type { CountedBatch } from '../data/batches.js';

/** The labelled tokens of a batch's rows, counted as the engine counts them. */
function targetsOf(b: Pick<CountedBatch, 'labels' | 'positionIds'>): number {
  if (b.labels.length === 0) return 0;
  if (!Array.isArray(b.labels[0])) return (b.labels as number[]).filter((l) => l !== -100).length; // one class per row
  const labels = b.labels as number[][];
  if (!b.positionIds) return labels.flat().filter((l) => l !== -100).length; // a class per token
  let n = 0; // next-token targets: a row's first position (and each packed example's) predicts nothing
  labels.forEach((row, r) => row.forEach((l, i) => { if (i > 0 && l !== -100 && b.positionIds![r]![i] !== 0) n++; }));
  return n;
}

/** Rows [rank·per, (rank+1)·per) of a global micro-batch (fewer, or none, at the end of an epoch). */
export function rankShare(b: CountedBatch, rank: number, per: number): CountedBatch {
  const lo = rank * per, hi = lo + per;
  const labels = (b.labels as unknown[]).slice(lo, hi) as CountedBatch['labels'];
  const share: CountedBatch = { inputIds: b.inputIds.slice(lo, hi), labels, position: b.position, targets: 0 };
  if (b.positionIds) share.positionIds = b.positionIds.slice(lo, hi);
  if (b.lengths) share.lengths = b.lengths.slice(lo, hi);
  share.targets = targetsOf(share);
  return share;
}
