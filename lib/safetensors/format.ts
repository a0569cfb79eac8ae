// The safetensors header: parsing and the checks that make a hostile file harmless.
// Layout: u64 little-endian N, then N bytes of JSON, then the data section. Each tensor entry is
// {dtype, shape, data_offsets: [begin, end]} with offsets relative to the data section;
// "__metadata__" is an optional string->string map. Nothing here allocates more than the header.
import { TunekitError } from '../errors.js';
import type { Dtype } from '../tensor.js';

/** Every dtype the format defines, with its element size in bytes. */
export const SAFETENSORS_DTYPE_SIZE = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
} as const;
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_SIZE;

/** The dtypes tunekit loads into tensors, and their tunekit names. */
export const LOADABLE: Partial<Record<SafetensorsDtype, Dtype>> = { F32: 'f32', F16: 'f16', BF16: 'bf16', I32: 'i32', U8: 'u8' };
export const TO_SAFETENSORS: Record<Dtype, SafetensorsDtype> = { f32: 'F32', f16: 'F16', bf16: 'BF16', i32: 'I32', u8: 'U8' };

/** The safetensors reference implementation refuses headers over 100 MB; so do we. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte offset of the first element in the file. */
  offset: number;
  byteLength: number;
  file: string;
}

export interface Header {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Byte offset of the data section (8 + header length). */
  dataStart: number;
}

export function corrupt(file: string, what: string): TunekitError {
  return new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: not a valid safetensors file: ${what}`);
}

/** Reads the 8-byte length prefix and checks it against the file size. */
export function headerLength(file: string, prefix: Uint8Array, fileSize: number): number {
  if (fileSize < 8 || prefix.length < 8) throw corrupt(file, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) throw corrupt(file, `header length ${n} exceeds the ${fileSize - 8} bytes after the length prefix`);
  if (n > BigInt(MAX_HEADER_BYTES)) throw corrupt(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2n) throw corrupt(file, `header length ${n} is too short for a JSON object`);
  return Number(n);
}

/** Parses and validates the JSON header; `fileSize` bounds every offset. */
export function parseHeader(file: string, json: Uint8Array, fileSize: number): Header {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(json); // a byte-order mark stays (and is refused)
  } catch {
    throw corrupt(file, 'header is not valid UTF-8');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw corrupt(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw corrupt(file, 'header is not a JSON object');
  // As the reference implementation: the header starts with '{' (no leading space; trailing
  // spaces are the writers' padding) and names each tensor once.
  if (!text.startsWith('{')) throw corrupt(file, `header starts with ${JSON.stringify(text.slice(0, 1))} instead of "{"`);
  const repeated = repeatedKey(text);
  if (repeated !== null) throw corrupt(file, `header names ${JSON.stringify(repeated)} twice`);

  const dataStart = 8 + json.length;
  const dataSize = fileSize - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(file, entry);
      continue;
    }
    tensors.set(name, parseEntry(file, name, entry, dataStart, dataSize));
  }
  checkCoverage(file, [...tensors.values()], dataStart, dataSize);
  return { tensors, metadata, dataStart };
}

function parseMetadata(file: string, entry: unknown): Record<string, string> {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw corrupt(file, '__metadata__ is not an object');
  for (const [k, v] of Object.entries(entry)) {
    if (typeof v !== 'string') throw corrupt(file, `__metadata__.${k} is not a string`);
  }
  return { ...(entry as Record<string, string>) };
}

function parseEntry(file: string, name: string, entry: unknown, dataStart: number, dataSize: number): TensorInfo {
  const where = `tensor ${JSON.stringify(name)}`;
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw corrupt(file, `${where} is not an object`);
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPE_SIZE)) {
    throw corrupt(file, `${where} has unknown dtype ${JSON.stringify(dtype)}; expected one of ${Object.keys(SAFETENSORS_DTYPE_SIZE).join(', ')}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw corrupt(file, `${where} has shape ${JSON.stringify(shape)}; expected an array of non-negative integers`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw corrupt(file, `${where} has data_offsets ${JSON.stringify(offsets)}; expected [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataSize) throw corrupt(file, `${where} ends at data offset ${end}, beyond the ${dataSize}-byte data section`);
  let count = 1;
  for (const d of shape as number[]) {
    count *= d;
    if (!Number.isSafeInteger(count)) throw corrupt(file, `${where} has an element count too large: ${JSON.stringify(shape)}`);
  }
  const size = SAFETENSORS_DTYPE_SIZE[dtype as SafetensorsDtype];
  if (count * size !== end - begin) {
    throw corrupt(file, `${where} has ${end - begin} bytes of data but dtype ${dtype} and shape [${shape.join(', ')}] need ${count * size}`);
  }
  return { name, dtype: dtype as SafetensorsDtype, shape: shape as number[], offset: dataStart + begin, byteLength: end - begin, file };
}

// The tensors tile the data section exactly, as the format specifies and the reference checks:
// sorted by offset, each starts where the previous ends, the first at 0 and the last at its end.
// A header length off by one (reading every tensor a byte early), gaps, overlaps and data no
// tensor claims are all refused here.
function checkCoverage(file: string, infos: TensorInfo[], dataStart: number, dataSize: number): void {
  const sorted = [...infos].sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength);
  let at = 0, prev: TensorInfo | null = null;
  for (const t of sorted) {
    const begin = t.offset - dataStart;
    if (begin < at) throw corrupt(file, `tensors ${JSON.stringify(prev!.name)} and ${JSON.stringify(t.name)} overlap in the data section`);
    if (begin > at) throw corrupt(file, `${begin - at} bytes of the data section before tensor ${JSON.stringify(t.name)} (data offset ${at}) belong to no tensor`);
    at = begin + t.byteLength;
    prev = t;
  }
  if (at !== dataSize) throw corrupt(file, `the tensors cover ${at} bytes of the ${dataSize}-byte data section (the header length or the offsets are wrong)`);
}

// The first key of the top-level object that appears twice, or null (JSON.parse keeps the last
// silently). One pass over the text, tracking strings and nesting depth.
function repeatedKey(text: string): string | null {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1) {
        let k = j + 1;
        while (text[k] === ' ' || text[k] === '\n' || text[k] === '\r' || text[k] === '\t') k++;
        if (text[k] === ':') {
          const key = JSON.parse(text.slice(i, j + 1)) as string;
          if (seen.has(key)) return key;
          seen.add(key);
        }
      }
      i = j;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return null;
}
