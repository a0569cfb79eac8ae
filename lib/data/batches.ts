// Examples -> micro-batches the model takes. Without packing, each row is one example, padded on
// the right to the longest in the batch (pad labels -100: causal attention never looks ahead, so
// right padding changes nothing for the real tokens). With packing, short examples are laid end to
// end into rows of maxLength with position ids restarting at 0, which the engine turns into
// attention that stays within each example (as transformers' DataCollatorWithFlattening).
// An example never spans two rows.
import type { Batch } from '../model/load.js';
import { TunekitError } from '../errors.js';
import type { Example } from './format.js';

export interface BatchOptions {
  /** Rows per micro-batch. */
  batchSize: number;
  /** Row length when packing (the longest example otherwise). */
  maxLength: number;
  /** Lay examples end to end in rows of maxLength, with position ids restarting at each. Default false. */
  packing?: boolean;
  /** Token id used for padding (its label is -100). */
  padId: number;
  /**
   * Classification: class ids by label (as strings). Each row is then one example with its class
   * id as the row's label and its length in `lengths`; packing does not apply. Default: language modelling.
   */
  classes?: ReadonlyMap<string, number>;
}

export interface CountedBatch extends Batch {
  /** Examples consumed from the start of the epoch once this batch is done (the data position). */
  position: number;
  /** Labelled tokens (targets) in the batch. */
  targets: number;
}

interface Row {
  ids: number[];
  labels: number[];
  positions: number[];
}

function toBatch(rows: Row[], padId: number, width: number, position: number): CountedBatch {
  const pad = (r: number[], v: number) => [...r, ...Array(width - r.length).fill(v)];
  let targets = 0;
  for (const r of rows) for (let i = 1; i < r.labels.length; i++) if (r.labels[i] !== -100 && r.positions[i] !== 0) targets++;
  return {
    inputIds: rows.map((r) => pad(r.ids, padId)),
    labels: rows.map((r) => pad(r.labels, -100)),
    // Padding continues the last example's positions, so it never opens a new segment.
    positionIds: rows.map((r) => [...r.positions, ...Array.from({ length: width - r.positions.length }, (_, i) => (r.positions.at(-1) ?? -1) + 1 + i)]),
    position,
    targets,
  };
}

/**
 * Groups examples into micro-batches, starting `skip` examples into the stream (to resume an epoch
 * where a checkpoint left it). The last batch may be smaller.
 */
export async function* batches(examples: AsyncIterable<Example>, o: BatchOptions, skip = 0): AsyncGenerator<CountedBatch> {
  if (o.classes) return yield* classBatches(examples, o, o.classes, skip);
  // Batches are emitted when every example so far sits in them, so `consumed` is the position.
  let rows: Row[] = [], current: Row | null = null, consumed = 0;
  const flush = () => {
    const width = o.packing ? o.maxLength : Math.max(...rows.map((r) => r.ids.length));
    const b = toBatch(rows, o.padId, width, consumed);
    rows = [];
    return b;
  };
  for await (const ex of examples) {
    if (consumed < skip) {
      consumed++;
      continue;
    }
    const ids = Array.from(ex.inputIds.subarray(0, o.maxLength)), labels = Array.from(ex.labels.subarray(0, o.maxLength));
    const positions = ids.map((_, i) => i);
    if (!o.packing) {
      rows.push({ ids, labels, positions });
      consumed++;
      if (rows.length === o.batchSize) yield flush();
      continue;
    }
    if (current && current.ids.length + ids.length > o.maxLength) {
      rows.push(current);
      current = null;
      if (rows.length === o.batchSize) yield flush();
    }
    current ??= { ids: [], labels: [], positions: [] };
    current.ids.push(...ids);
    current.labels.push(...labels);
    current.positions.push(...positions);
    consumed++;
  }
  if (current) rows.push(current);
  if (rows.length) yield flush();
}

/** Class ids of examples' labels; a label the classes do not know is an error naming the record. */
export function classOf(ex: Example, classes: ReadonlyMap<string, number>): number {
  const id = classes.get(String(ex.label));
  if (id === undefined) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${ex.where}: label ${JSON.stringify(ex.label)} was not seen in training (known: ${[...classes.keys()].join(', ')})`);
  }
  return id;
}

/** Class ids of a token-classification example's tags (-100 where a token has none). */
function tagIds(ex: Example, classes: ReadonlyMap<string, number>, width: number): number[] {
  const out = new Array<number>(width).fill(-100);
  ex.tags!.slice(0, width).forEach((t, i) => {
    if (t === null) return;
    const id = classes.get(t);
    if (id === undefined) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${ex.where}: tag ${JSON.stringify(t)} was not seen in training (known: ${[...classes.keys()].join(', ')})`);
    out[i] = id;
  });
  return out;
}

async function* classBatches(examples: AsyncIterable<Example>, o: BatchOptions, classes: ReadonlyMap<string, number>, skip: number): AsyncGenerator<CountedBatch> {
  let rows: Example[] = [], consumed = 0;
  const flush = (): CountedBatch => {
    const width = Math.max(...rows.map((r) => Math.min(r.inputIds.length, o.maxLength)));
    const perToken = rows[0]!.tags !== undefined;
    const labels = perToken ? rows.map((r) => tagIds(r, classes, width)) : rows.map((r) => classOf(r, classes));
    const b: CountedBatch = {
      inputIds: rows.map((r) => [...Array.from(r.inputIds.subarray(0, o.maxLength)), ...Array(width - Math.min(r.inputIds.length, o.maxLength)).fill(o.padId)]),
      labels,
      lengths: rows.map((r) => Math.min(r.inputIds.length, o.maxLength)),
      position: consumed,
      targets: perToken ? (labels as number[][]).flat().filter((l) => l !== -100).length : rows.length,
    };
    rows = [];
    return b;
  };
  for await (const ex of examples) {
    if (consumed++ < skip) continue;
    if (ex.inputIds.length === 0) continue;
    rows.push(ex);
    if (rows.length === o.batchSize) yield flush();
  }
  if (rows.length) yield flush();
}
