// Writing safetensors files, single or sharded, atomically: data goes to a temporary file in the
// same folder that is renamed over the target only once complete and flushed, so a full disk or
// a crash never leaves a half-written model where a good one was.
import { mkdir, open, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { TunekitError } from '../errors.js';
import { DTYPE_SIZE, type Tensor } from '../tensor.js';
import { MAX_HEADER_BYTES, TO_SAFETENSORS } from './format.js';

const CHUNK = 1 << 30;

export type TensorMap = Record<string, Tensor> | Map<string, Tensor>;

export interface WriteOptions {
  /** Stored as __metadata__ (string -> string), e.g. {format: 'pt'}. Default: none. */
  metadata?: Record<string, string>;
}

function entries(tensors: TensorMap): [string, Tensor][] {
  const list = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, t] of list) {
    // A disposed tensor keeps its shape but no bytes: writing it would give a file whose header
    // promises data it does not hold.
    if (t.bytes.byteLength !== t.numel * DTYPE_SIZE[t.dtype]) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a live tensor for ${name} but it was disposed`);
  }
  return list;
}

function ioError(file: string, e: unknown): TunekitError {
  const err = e as NodeJS.ErrnoException;
  const what = err.code === 'ENOSPC' ? 'no space left on device' : err.message;
  return new TunekitError('ERR_TUNEKIT_IO', `could not write ${file}: ${what}`, { cause: e });
}

/** Writes `content` through a temp file + rename; the target is untouched on failure. */
export async function writeAtomically(file: string, write: (fh: import('node:fs/promises').FileHandle) => Promise<void>): Promise<void> {
  const target = resolve(file);
  const temp = join(dirname(target), `.${basename(target)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  let fh;
  try {
    await mkdir(dirname(target), { recursive: true });
    fh = await open(temp, 'wx');
    await write(fh);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(temp, target);
  } catch (e) {
    await fh?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw e instanceof TunekitError ? e : ioError(target, e);
  }
}

function headerBytes(list: [string, Tensor][], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected string for metadata.${k} but received ${typeof v}`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected a tensor name other than __metadata__');
    header[name] = { dtype: TO_SAFETENSORS[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + t.byteLength] };
    offset += t.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  const padded = Math.ceil((8 + json.length) / 8) * 8 - 8;
  if (padded > MAX_HEADER_BYTES) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `safetensors header would be ${padded} bytes, over the ${MAX_HEADER_BYTES}-byte limit`);
  const out = new Uint8Array(8 + padded).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/** Writes tensors (in the given order) to one .safetensors file. */
export async function writeSafetensors(file: string, tensors: TensorMap, options: WriteOptions = {}): Promise<void> {
  const list = entries(tensors);
  const header = headerBytes(list, options.metadata);
  await writeAtomically(file, async (fh) => {
    let position = 0;
    const put = async (bytes: Uint8Array) => {
      for (let done = 0; done < bytes.length; ) {
        const length = Math.min(CHUNK, bytes.length - done);
        const { bytesWritten } = await fh.write(bytes, done, length, position);
        done += bytesWritten;
        position += bytesWritten;
      }
    };
    await put(header);
    for (const [, t] of list) await put(t.bytes);
  });
}

export interface ShardedWriteOptions extends WriteOptions {
  /** Largest shard in bytes of tensor data (default 5 GB, as transformers' save_pretrained). */
  maxShardBytes?: number;
  /** File name stem (default "model"): model-00001-of-00002.safetensors, model.safetensors.index.json. */
  prefix?: string;
}

/**
 * Writes tensors into `folder` as transformers does: one `<prefix>.safetensors` when they fit in a
 * shard, else numbered shards plus `<prefix>.safetensors.index.json`. Returns the files written.
 */
export async function writeShardedSafetensors(folder: string, tensors: TensorMap, options: ShardedWriteOptions = {}): Promise<string[]> {
  const maxShard = options.maxShardBytes ?? 5_000_000_000;
  if (!Number.isSafeInteger(maxShard) || maxShard < 1) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected positive integer for maxShardBytes but received ${maxShard}`);
  }
  const prefix = options.prefix ?? 'model';
  const shards: [string, Tensor][][] = [[]];
  let size = 0;
  for (const entry of entries(tensors)) {
    const bytes = entry[1].byteLength;
    if (size > 0 && size + bytes > maxShard) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1]!.push(entry);
    size += bytes;
  }
  if (shards.length === 1) {
    const file = join(folder, `${prefix}.safetensors`);
    await writeSafetensors(file, new Map(shards[0]), options);
    return [file];
  }
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (const [i, shard] of shards.entries()) {
    const name = `${prefix}-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    await writeSafetensors(join(folder, name), new Map(shard), options);
    files.push(join(folder, name));
    for (const [tname, t] of shard) {
      weightMap[tname] = name;
      total += t.byteLength;
    }
  }
  const index = join(folder, `${prefix}.safetensors.index.json`);
  const json = JSON.stringify({ metadata: { total_size: total, ...(options.metadata ?? {}) }, weight_map: weightMap }, null, 2);
  await writeAtomically(index, (fh) => writeFile(fh, json + '\n'));
  files.push(index);
  return files;
}
