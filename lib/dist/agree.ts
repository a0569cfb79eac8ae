// Decisions every rank must take together. A rank that fails alone and stops calling collectives
// leaves the others waiting in their next one forever; so the places where a rank can fail on its
// own (setup, a step's micro-batches, writing a checkpoint) end in settle(), one all-reduce of a
// failure flag per rank, after which every rank throws or every rank goes on.
import { createHash } from 'node:crypto';
import { TunekitError } from '../errors.js';
import type { ProcessGroup } from './group.js';

/** Runs fn, returning what it threw instead of throwing it. */
export async function attempt(fn: () => Promise<void>): Promise<unknown> {
  try {
    await fn();
    return undefined;
  } catch (e) {
    return e ?? new Error('undefined was thrown');
  }
}

/**
 * Collective: throws on every rank when any rank passes an error (its own error on that rank, one
 * naming the failed ranks elsewhere); returns on every rank otherwise. `what` says where.
 */
export async function settle(group: ProcessGroup, error: unknown, what: string): Promise<void> {
  if (group.world === 1) {
    if (error !== undefined) throw error;
    return;
  }
  const flags = new Float64Array(group.world);
  flags[group.rank] = error === undefined ? 0 : 1;
  await group.allReduce(flags);
  const failed = [...flags.keys()].filter((r) => flags[r]! > 0);
  if (failed.length === 0) return;
  if (error !== undefined) {
    if (error instanceof TunekitError && !error.message.startsWith('rank ')) error.message = `rank ${group.rank}: ${error.message}`;
    throw error;
  }
  throw new TunekitError('ERR_TUNEKIT_INTERNAL', `rank ${failed.join(', ')} failed ${what} (its error is in its own output); rank ${group.rank} stopped with it`);
}

/** Four 32-bit words of a text's SHA-256 (exact as float64). */
function words(text: string): number[] {
  const d = createHash('sha256').update(text).digest();
  return [0, 4, 8, 12].map((i) => d.readUInt32LE(i));
}

/**
 * Collective: checks that every rank has the same value of each part (options, model, data...);
 * throws on every rank, naming the parts and ranks that differ from rank 0.
 */
export async function checkSame(group: ProcessGroup, parts: Record<string, string>): Promise<void> {
  if (group.world === 1) return;
  const names = Object.keys(parts);
  const mine = names.flatMap((n) => words(parts[n]!));
  const root = await group.broadcast(Float64Array.from(mine), 0);
  const flags = new Float64Array(group.world * names.length);
  names.forEach((_, k) => {
    if (mine.slice(4 * k, 4 * k + 4).some((w, i) => w !== root[4 * k + i])) flags[group.rank * names.length + k] = 1;
  });
  await group.allReduce(flags);
  const differ: string[] = [];
  for (let r = 0; r < group.world; r++) {
    const which = names.filter((_, k) => flags[r * names.length + k]! > 0);
    if (which.length) differ.push(`rank ${r} (${which.join(', ')})`);
  }
  if (differ.length) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected every rank to train with the same ${names.join(', ')} but ${differ.join('; ')} differ from rank 0's: start every rank with the same job (same files, same options)`);
  }
}
