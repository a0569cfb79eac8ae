// Reading safetensors files, single or sharded (model.safetensors.index.json), straight into native
// tensor memory in bounded chunks: no whole-file Buffer, so files over 2 GiB work.
import { stat, type FileHandle } from 'node:fs/promises';
import { openRegularFile, readTextFile } from '../files.js';
import { dirname, join, resolve } from 'node:path';
import { TunekitError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { corrupt, headerLength, LOADABLE, parseHeader, type TensorInfo } from './format.js';
import { isPickle, pickleIn, pickleRefusal } from './pickle.js';

/** Largest single read; fs reads are limited to 2 GiB - 1 bytes each. */
const CHUNK = 1 << 30;

export interface SafetensorsReader {
  /** The files behind this reader (one, or every shard). */
  readonly files: string[];
  /** __metadata__ of the file (for a sharded model: the index's "metadata" plus the first shard's). */
  readonly metadata: Record<string, string>;
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /** Reads a tensor of dtype F32, F16, BF16, I32 or U8 into native memory. */
  read(name: string): Promise<Tensor>;
  close(): Promise<void>;
}

function ioError(file: string, e: unknown): TunekitError {
  const err = e as NodeJS.ErrnoException;
  return new TunekitError('ERR_TUNEKIT_IO', `${file}: ${err.code ? `${err.code}: ` : ''}${err.message}`, { cause: e });
}

/** Reads exactly `length` bytes at `position` into `target`, failing on a short file. */
async function readFully(fh: FileHandle, file: string, target: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const length = Math.min(CHUNK, target.length - done);
    const { bytesRead } = await fh.read(target, done, length, position + done);
    if (bytesRead === 0) throw corrupt(file, `unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}

class SingleFileReader implements SafetensorsReader {
  private constructor(
    private readonly fh: FileHandle,
    readonly file: string,
    private readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Record<string, string>,
  ) {}

  get files(): string[] {
    return [this.file];
  }

  static async open(path: string): Promise<SingleFileReader> {
    const file = resolve(path);
    const fh: FileHandle = await openRegularFile(file);
    try {
      const { size } = await fh.stat();
      const prefix = new Uint8Array(8);
      if (size >= 8) await readFully(fh, file, prefix, 0);
      const n = headerLength(file, prefix, size);
      const json = new Uint8Array(n);
      await readFully(fh, file, json, 8);
      const header = parseHeader(file, json, size);
      return new SingleFileReader(fh, file, header.tensors, header.metadata);
    } catch (e) {
      await fh.close();
      throw e instanceof TunekitError ? e : ioError(file, e);
    }
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${this.file}: no tensor named ${JSON.stringify(name)}`);
    return info;
  }

  async read(name: string): Promise<Tensor> {
    const info = this.info(name);
    const dtype = LOADABLE[info.dtype];
    if (!dtype) {
      throw new TunekitError(
        'ERR_TUNEKIT_UNSUPPORTED',
        `${this.file}: tensor ${JSON.stringify(name)} has dtype ${info.dtype}; tunekit reads ${Object.keys(LOADABLE).join(', ')}`,
      );
    }
    const tensor = Tensor.zeros(dtype, info.shape);
    try {
      await readFully(this.fh, this.file, tensor.bytes, info.offset);
    } catch (e) {
      throw e instanceof TunekitError ? e : ioError(this.file, e);
    }
    return tensor;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

class ShardedReader implements SafetensorsReader {
  constructor(
    private readonly shards: SingleFileReader[],
    private readonly owner: Map<string, SingleFileReader>,
    readonly metadata: Record<string, string>,
  ) {}

  get files(): string[] {
    return this.shards.map((s) => s.file);
  }

  names(): string[] {
    return [...this.owner.keys()];
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  private shard(name: string): SingleFileReader {
    const s = this.owner.get(name);
    if (!s) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${this.files.join(', ')}: no tensor named ${JSON.stringify(name)}`);
    return s;
  }

  info(name: string): TensorInfo {
    return this.shard(name).info(name);
  }

  read(name: string): Promise<Tensor> {
    return this.shard(name).read(name);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
  }
}

async function openIndex(indexPath: string): Promise<SafetensorsReader> {
  const file = resolve(indexPath);
  let raw: unknown;
  try {
    raw = JSON.parse(await readTextFile(file));
  } catch (e) {
    if (e instanceof SyntaxError) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: invalid JSON (${e.message})`);
    throw ioError(file, e);
  }
  const weightMap = (raw as { weight_map?: unknown })?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: expected an object "weight_map" of tensor name -> shard file`);
  }
  const shardNames = new Set<string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\')) {
      throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: weight_map[${JSON.stringify(name)}] must be a file name in the same folder`);
    }
    shardNames.add(shard);
  }
  const shards = new Map<string, SingleFileReader>();
  try {
    for (const shard of shardNames) shards.set(shard, await SingleFileReader.open(join(dirname(file), shard)));
  } catch (e) {
    await Promise.all([...shards.values()].map((s) => s.close()));
    throw e;
  }
  const owner = new Map<string, SingleFileReader>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, string>)) {
    const reader = shards.get(shard)!;
    if (!reader.has(name)) {
      await Promise.all([...shards.values()].map((s) => s.close()));
      throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: weight_map says ${JSON.stringify(name)} is in ${shard}, but that shard has no such tensor`);
    }
    owner.set(name, reader);
  }
  const indexMeta = (raw as { metadata?: unknown }).metadata ?? {};
  if (typeof indexMeta !== 'object' || indexMeta === null || Array.isArray(indexMeta)) {
    await Promise.all([...shards.values()].map((s) => s.close()));
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: expected "metadata" to be an object (such as {"total_size": 123}) but it is ${Array.isArray(indexMeta) ? 'an array' : typeof indexMeta}`);
  }
  const metadata: Record<string, string> = { ...(shards.values().next().value?.metadata ?? {}) };
  // Scalars only, as safetensors' own metadata (string -> string): a nested value is not turned
  // into text (String() of a deeply nested array recurses until the stack overflows).
  for (const [k, v] of Object.entries(indexMeta)) if (v === null || typeof v !== 'object') metadata[k] = String(v);
  return new ShardedReader([...shards.values()], owner, metadata);
}

/**
 * Opens a safetensors file, a sharded index (`*.safetensors.index.json`), or a folder holding
 * `model.safetensors.index.json` or `model.safetensors`. Only headers are read here.
 */
export async function openSafetensors(path: string): Promise<SafetensorsReader> {
  let isDir = false;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (e) {
    throw ioError(resolve(path), e);
  }
  if (isDir) {
    for (const [name, opener] of [
      ['model.safetensors.index.json', openIndex],
      ['model.safetensors', SingleFileReader.open],
    ] as const) {
      const candidate = join(path, name);
      if (await stat(candidate).then(() => true, () => false)) return opener(candidate);
    }
    const pickle = pickleIn(resolve(path), ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'model.bin', 'model.pt', 'adapter_model.bin']);
    if (pickle) throw pickleRefusal(pickle.replace(/\.index\.json$/, ''), pickle.includes('adapter_model') ? 'adapter' : 'model');
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${resolve(path)}: no model.safetensors.index.json or model.safetensors in this folder`);
  }
  if (isPickle(path)) throw pickleRefusal(resolve(path), /adapter/.test(path) ? 'adapter' : 'model');
  return path.endsWith('.json') ? openIndex(path) : SingleFileReader.open(path);
}
