// Reading GGUF files: metadata and tensor infos are parsed with bounded reads (every count and
// length is checked against the bytes left before anything is allocated), tensor data is read
// straight into native memory. F32/F16/BF16 become Tensors; Q4_0/Q4_1/Q8_0 and the K-quants stay quantized as
// Weights that GEMMs decode panel by panel.
import type { FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { TunekitError } from '../errors.js';
import { openRegularFile } from '../files.js';
import { Tensor } from '../tensor.js';
import { Weights, type WeightFormat } from '../weights.js';
import { GGML_TYPES, GGUF_MAGIC, GgufValueType, type GgufTensorInfo, type GgufValue } from './format.js';
import { joinSplitGguf, splitCount } from './split.js';

const CHUNK = 1 << 20;
const READ_CHUNK = 1 << 30;
/**
 * The most elements a metadata array may hold. Real files hold a vocabulary (Gemma 3: 262,144
 * tokens) and its merges; a count past this is a hostile or broken file, refused before anything
 * is read instead of building a JS array the size of the file.
 */
export const MAX_METADATA_ARRAY = 1 << 24;
// Bytes per element of the fixed-size value types, read in bulk.
const FIXED: Partial<Record<number, number>> = {
  [GgufValueType.UINT8]: 1, [GgufValueType.INT8]: 1, [GgufValueType.UINT16]: 2, [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4, [GgufValueType.INT32]: 4, [GgufValueType.FLOAT32]: 4, [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8, [GgufValueType.INT64]: 8, [GgufValueType.FLOAT64]: 8,
};
const utf8 = new TextDecoder('utf-8', { fatal: true });

function corrupt(file: string, what: string): TunekitError {
  return new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: not a valid GGUF file: ${what}`);
}

/** Sequential reader over the header region, refilling a window from the file as needed. */
class Cursor {
  private buf = new Uint8Array(0);
  private start = 0; // file offset of buf[0]
  pos = 0;
  constructor(private readonly fh: FileHandle, readonly file: string, readonly size: number) {}

  private async need(n: number): Promise<DataView> {
    if (this.pos + n > this.size) throw corrupt(this.file, `needs ${n} bytes at offset ${this.pos}, past the end of the ${this.size}-byte file`);
    if (this.pos < this.start || this.pos + n > this.start + this.buf.length) {
      const length = Math.min(Math.max(n, CHUNK), this.size - this.pos);
      this.buf = new Uint8Array(length);
      await this.fh.read(this.buf, 0, length, this.pos);
      this.start = this.pos;
    }
    const view = new DataView(this.buf.buffer, this.pos - this.start, n);
    this.pos += n;
    return view;
  }

  left(): number {
    return this.size - this.pos;
  }
  /** n values of a fixed-size type, read in windows of at most CHUNK bytes. */
  private async fixedArray(type: number, n: number, size: number, key: string): Promise<GgufValue[]> {
    const out: GgufValue[] = new Array(n);
    const per = Math.max(1, Math.floor(CHUNK / size));
    for (let i = 0; i < n; i += per) {
      const count = Math.min(per, n - i);
      const v = await this.need(count * size);
      for (let j = 0; j < count; j++) {
        const at = j * size;
        switch (type) {
          case GgufValueType.UINT8: out[i + j] = v.getUint8(at); break;
          case GgufValueType.INT8: out[i + j] = v.getInt8(at); break;
          case GgufValueType.UINT16: out[i + j] = v.getUint16(at, true); break;
          case GgufValueType.INT16: out[i + j] = v.getInt16(at, true); break;
          case GgufValueType.UINT32: out[i + j] = v.getUint32(at, true); break;
          case GgufValueType.INT32: out[i + j] = v.getInt32(at, true); break;
          case GgufValueType.FLOAT32: out[i + j] = v.getFloat32(at, true); break;
          case GgufValueType.UINT64: out[i + j] = bigOrNumber(v.getBigUint64(at, true)); break;
          case GgufValueType.INT64: out[i + j] = bigOrNumber(v.getBigInt64(at, true)); break;
          case GgufValueType.FLOAT64: out[i + j] = v.getFloat64(at, true); break;
          case GgufValueType.BOOL: {
            const b = v.getUint8(at);
            if (b > 1) throw corrupt(this.file, `metadata ${key}[${i + j}] has boolean byte ${b}`);
            out[i + j] = b === 1;
            break;
          }
        }
      }
    }
    return out;
  }
  async u32(): Promise<number> {
    return (await this.need(4)).getUint32(0, true);
  }
  /** A u64 that must be a safe integer (counts, lengths, offsets). */
  async count(what: string): Promise<number> {
    const v = (await this.need(8)).getBigUint64(0, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(this.file, `${what} ${v} is too large`);
    return Number(v);
  }
  async string(what: string): Promise<string> {
    const n = await this.count(`length of ${what}`);
    if (n > this.left()) throw corrupt(this.file, `${what} claims ${n} bytes but only ${this.left()} remain`);
    const view = await this.need(n);
    try {
      return utf8.decode(new Uint8Array(view.buffer, view.byteOffset, n));
    } catch {
      throw corrupt(this.file, `${what} is not valid UTF-8`);
    }
  }
  async value(type: number, key: string, depth = 0): Promise<GgufValue> {
    switch (type) {
      case GgufValueType.UINT8: return (await this.need(1)).getUint8(0);
      case GgufValueType.INT8: return (await this.need(1)).getInt8(0);
      case GgufValueType.UINT16: return (await this.need(2)).getUint16(0, true);
      case GgufValueType.INT16: return (await this.need(2)).getInt16(0, true);
      case GgufValueType.UINT32: return (await this.need(4)).getUint32(0, true);
      case GgufValueType.INT32: return (await this.need(4)).getInt32(0, true);
      case GgufValueType.FLOAT32: return (await this.need(4)).getFloat32(0, true);
      case GgufValueType.BOOL: {
        const b = (await this.need(1)).getUint8(0);
        if (b > 1) throw corrupt(this.file, `metadata ${key} has boolean byte ${b}`);
        return b === 1;
      }
      case GgufValueType.STRING: return this.string(`metadata ${key}`);
      case GgufValueType.UINT64: return bigOrNumber((await this.need(8)).getBigUint64(0, true));
      case GgufValueType.INT64: return bigOrNumber((await this.need(8)).getBigInt64(0, true));
      case GgufValueType.FLOAT64: return (await this.need(8)).getFloat64(0, true);
      case GgufValueType.ARRAY: {
        if (depth > 0) throw corrupt(this.file, `metadata ${key} nests arrays`);
        const itemType = await this.u32();
        const n = await this.count(`length of metadata ${key}`);
        // Every element takes at least one byte (a string eight): a count beyond the file is a lie, not a request.
        if (n > MAX_METADATA_ARRAY) throw corrupt(this.file, `metadata ${key} claims ${n} elements; tunekit reads arrays of at most ${MAX_METADATA_ARRAY} (a vocabulary holds a few hundred thousand)`);
        const least = FIXED[itemType] ?? (itemType === GgufValueType.STRING ? 8 : 1);
        if (n * least > this.left()) throw corrupt(this.file, `metadata ${key} claims ${n} elements (at least ${n * least} bytes) but only ${this.left()} bytes remain`);
        const size = FIXED[itemType];
        if (size !== undefined) return this.fixedArray(itemType, n, size, key); // in bulk: one read, no await per element
        const out: GgufValue[] = [];
        for (let i = 0; i < n; i++) out.push(await this.value(itemType, key, depth + 1));
        return out;
      }
      default:
        throw corrupt(this.file, `metadata ${key} has unknown value type ${type}`);
    }
  }
}

function bigOrNumber(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export interface GgufFile {
  readonly file: string;
  readonly version: number;
  readonly metadata: Map<string, GgufValue>;
  readonly tensors: Map<string, GgufTensorInfo>;
  /** F32/F16/BF16 as a Tensor (f32, f16, bf16); Q4_0/Q4_1/Q8_0 as Weights [rows, cols]. */
  read(name: string): Promise<Tensor | Weights>;
  close(): Promise<void>;
}

/**
 * Opens a GGUF file and parses its header; tensor data is read on demand. The first part of a file
 * split by gguf-split (…-00001-of-00003.gguf) opens the others beside it, as one file.
 */
export async function openGguf(path: string): Promise<GgufFile> {
  const first = await openGgufPart(path);
  return splitCount(first.metadata) > 1 ? joinSplitGguf(first, openGgufPart) : first;
}

async function openGgufPart(path: string): Promise<GgufFile> {
  const file = resolve(path);
  const fh: FileHandle = await openRegularFile(file);
  try {
    const { size } = await fh.stat();
    const c = new Cursor(fh, file, size);
    if (size < 24 || (await c.u32()) !== GGUF_MAGIC) throw corrupt(file, 'missing the "GGUF" magic');
    const version = await c.u32();
    if (version !== 2 && version !== 3) throw corrupt(file, `version ${version}; tunekit reads versions 2 and 3`);
    const tensorCount = await c.count('tensor count');
    const kvCount = await c.count('metadata count');
    if (tensorCount > size || kvCount > size) throw corrupt(file, `counts (${tensorCount} tensors, ${kvCount} metadata) exceed the file size`);
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = await c.string(`metadata key ${i}`);
      metadata.set(key, await c.value(await c.u32(), key));
    }
    const infos: (GgufTensorInfo & { relative: number; typeId: number })[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = await c.string(`tensor name ${i}`);
      const nDims = await c.u32();
      if (nDims < 1 || nDims > 4) throw corrupt(file, `tensor ${name} has ${nDims} dimensions; expected 1 to 4`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(await c.count(`dimension ${d} of tensor ${name}`));
      const typeId = await c.u32();
      const relative = await c.count(`offset of tensor ${name}`);
      const t = GGML_TYPES[typeId];
      if (!t) throw corrupt(file, `tensor ${name} has unknown ggml type ${typeId}`);
      const elements = dims.reduce((a, b) => a * b, 1);
      if (!Number.isSafeInteger(elements) || dims[0]! % t[1] !== 0) {
        throw corrupt(file, `tensor ${name} has dims [${dims.join(', ')}], which do not fit ${t[0]} blocks of ${t[1]}`);
      }
      infos.push({ name, type: t[0], shape: [...dims].reverse(), offset: 0, byteLength: (elements / t[1]) * t[2], relative, typeId });
    }
    const alignment = metadata.get('general.alignment') ?? 32;
    if (typeof alignment !== 'number' || !Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0) {
      throw corrupt(file, `general.alignment ${String(alignment)} is not a power of two`);
    }
    const dataStart = Math.ceil(c.pos / alignment) * alignment;
    const tensors = new Map<string, GgufTensorInfo>();
    for (const info of infos) {
      if (info.relative % alignment !== 0) throw corrupt(file, `tensor ${info.name} offset ${info.relative} is not aligned to ${alignment}`);
      info.offset = dataStart + info.relative;
      if (info.offset + info.byteLength > size) throw corrupt(file, `tensor ${info.name} (${info.byteLength} bytes at ${info.offset}) runs past the end of the ${size}-byte file`);
      if (tensors.has(info.name)) throw corrupt(file, `tensor ${info.name} appears twice`);
      const { relative: _r, typeId: _t, ...pub } = info;
      tensors.set(info.name, pub);
    }
    const sorted = [...tensors.values()].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.offset < sorted[i - 1]!.offset + sorted[i - 1]!.byteLength) {
        throw corrupt(file, `tensors ${sorted[i - 1]!.name} and ${sorted[i]!.name} overlap`);
      }
    }
    return new GgufReader(fh, file, version, metadata, tensors);
  } catch (e) {
    await fh.close();
    throw e;
  }
}

const DENSE: Record<string, 'f32' | 'f16' | 'bf16'> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };
const QUANT: Record<string, WeightFormat> = {
  Q4_0: 'q4_0', Q4_1: 'q4_1', Q8_0: 'q8_0', Q2_K: 'q2_k', Q3_K: 'q3_k', Q4_K: 'q4_k', Q5_K: 'q5_k', Q6_K: 'q6_k', Q8_K: 'q8_k', Q5_0: 'q5_0', Q5_1: 'q5_1', IQ4_NL: 'iq4_nl', IQ4_XS: 'iq4_xs',
};

class GgufReader implements GgufFile {
  constructor(
    private readonly fh: FileHandle,
    readonly file: string,
    readonly version: number,
    readonly metadata: Map<string, GgufValue>,
    readonly tensors: Map<string, GgufTensorInfo>,
  ) {}

  private async fill(target: Uint8Array, position: number): Promise<void> {
    for (let done = 0; done < target.length; ) {
      const { bytesRead } = await this.fh.read(target, done, Math.min(READ_CHUNK, target.length - done), position + done);
      if (bytesRead === 0) throw corrupt(this.file, `unexpected end of file at byte ${position + done}`);
      done += bytesRead;
    }
  }

  async read(name: string): Promise<Tensor | Weights> {
    const info = this.tensors.get(name);
    if (!info) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${this.file}: no tensor named ${JSON.stringify(name)}`);
    const dense = DENSE[info.type], quant = QUANT[info.type];
    if (dense) {
      const t = Tensor.zeros(dense, info.shape);
      await this.fill(t.bytes, info.offset);
      return t;
    }
    if (quant) {
      const cols = info.shape[info.shape.length - 1]!;
      const rows = info.shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const blocks = Tensor.zeros('u8', [info.byteLength]);
      await this.fill(blocks.bytes, info.offset);
      return Weights.fromParts({ format: quant, shape: [rows, cols], data: blocks });
    }
    throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${this.file}: tensor ${name} has type ${info.type}; tunekit reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS`);
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}
