// Records from where users keep data: JSONL, CSV/TSV, Parquet and plain-text files, a folder of
// them, or an in-memory array / async iterable. Everything is read as a stream (Parquet one row
// group at a time), so a file larger than memory works. Each record carries where it came from
// ("data.jsonl:17") so every later error can name the file and line.
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parse as parseCsv } from 'csv-parse';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { TunekitError } from '../errors.js';
import { show } from '../validate.js';

export type Row = Record<string, unknown>;

// Parquet's decompressors (zstd, brotli, ... as WebAssembly) reserve gigabytes of address space
// when their module loads (VmSize 0.7 -> 11.5 GB): under an address-space limit (ulimit -v, some
// containers) importing tunekit would fail. They load on the first Parquet file instead.
let parquetCompressors: Promise<Record<string, unknown>> | undefined;
async function compressorsOnce(): Promise<Record<string, unknown>> {
  parquetCompressors ??= import('hyparquet-compressors').then((m) => m.compressors as Record<string, unknown>);
  return parquetCompressors;
}

export interface SourceRecord {
  row: Row;
  /** Where the record came from: "file:line", "file row N" or "item N". */
  where: string;
}

/** A record that could not be read; thrown, or counted and reported when skipInvalid is set. */
export class InvalidRecord extends TunekitError {
  constructor(readonly where: string, readonly reason: string) {
    super('ERR_TUNEKIT_INVALID_ARGUMENT', `${where}: ${reason}`);
  }
}

export type DataSource = string | string[] | readonly Row[] | AsyncIterable<Row> | Iterable<Row>;

export interface SourceOptions {
  /** Plain-text files: one record per line (as Hugging Face's "text" loader), per blank-line-separated paragraph, or per file. Default 'line'. */
  textUnit?: 'line' | 'paragraph' | 'document';
  /** CSV delimiter; default "," (and tab for .tsv). */
  delimiter?: string;
}

const KINDS: Record<string, 'jsonl' | 'csv' | 'tsv' | 'parquet' | 'text'> = {
  '.jsonl': 'jsonl', '.ndjson': 'jsonl', '.json': 'jsonl', '.csv': 'csv', '.tsv': 'tsv', '.parquet': 'parquet', '.txt': 'text', '.md': 'text', '.text': 'text',
};

/** Streams the source's records in a fixed order (folders: files sorted by name). */
export async function* readRecords(source: DataSource, options: SourceOptions = {}): AsyncGenerator<SourceRecord> {
  if (typeof source === 'string' || (Array.isArray(source) && source.every((s) => typeof s === 'string'))) {
    for (const file of await listFiles(source as string | string[])) yield* readFile(file, options);
    return;
  }
  let i = 0;
  for await (const row of source as AsyncIterable<Row>) {
    const where = `item ${i++}`;
    if (row === null || typeof row !== 'object' || Array.isArray(row)) yield { row: invalid(where, `expected an object but received ${typeof row}`), where };
    else yield { row, where };
  }
}

// A row that is itself an error (thrown by the consumer unless it skips invalid rows).
const ERROR = Symbol('invalid record');
function invalid(where: string, reason: string): Row {
  return { [ERROR]: new InvalidRecord(where, reason) };
}
export function recordError(row: Row): InvalidRecord | undefined {
  return (row as { [ERROR]?: InvalidRecord })[ERROR];
}

async function listFiles(paths: string | string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of Array.isArray(paths) ? paths : [paths]) {
    let info;
    try {
      info = await stat(p);
    } catch {
      throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a data file or folder at ${p} but found nothing there`);
    }
    if (!info.isDirectory()) {
      out.push(p);
      continue;
    }
    const names = (await readdir(p)).filter((n) => KINDS[extname(n).toLowerCase()]).sort();
    if (names.length === 0) {
      throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${p}: no data files (expected ${Object.keys(KINDS).join(', ')})`);
    }
    out.push(...names.map((n) => join(p, n)));
  }
  return out;
}

async function* readFile(file: string, options: SourceOptions): AsyncGenerator<SourceRecord> {
  const kind = KINDS[extname(file).toLowerCase()];
  if (!kind) {
    throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${file}: unknown data file type (expected ${Object.keys(KINDS).join(', ')})`);
  }
  if (kind === 'parquet') return yield* readParquet(file);
  if (kind === 'csv' || kind === 'tsv') return yield* readCsv(file, options.delimiter ?? (kind === 'tsv' ? '\t' : ','));
  if (kind === 'jsonl') return yield* readJsonl(file);
  return yield* readText(file, options.textUnit ?? 'line');
}

/**
 * The file as UTF-8 text, chunk by chunk. A byte sequence that is not UTF-8 is an error naming
 * the line (a replacement character would silently corrupt the data).
 */
async function* decodeFile(file: string): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let line = 1;
  let stream;
  try {
    stream = createReadStream(file);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let text: string;
      try {
        text = decoder.decode(chunk, { stream: true });
      } catch {
        throw new InvalidRecord(`${file}:${line + countLinesUntilInvalid(chunk)}`, 'invalid UTF-8 byte (expected UTF-8 text)');
      }
      for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
      yield text;
    }
    const rest = decoder.decode();
    if (rest) yield rest;
  } catch (e) {
    if (e instanceof TunekitError) throw e;
    throw new TunekitError('ERR_TUNEKIT_IO', `${file}: ${(e as Error).message}`, { cause: e });
  } finally {
    stream?.destroy();
  }
}

// Newlines before the first byte that breaks UTF-8 in this chunk (approximate at chunk edges).
function countLinesUntilInvalid(chunk: Buffer): number {
  const probe = new TextDecoder('utf-8', { fatal: true });
  let lines = 0, start = 0;
  for (let i = 0; i < chunk.length; i++) {
    if (chunk[i] !== 10) continue;
    try {
      probe.decode(chunk.subarray(start, i + 1));
    } catch {
      return lines;
    }
    lines++;
    start = i + 1;
  }
  return lines;
}

async function* linesOf(file: string): AsyncGenerator<{ text: string; line: number }> {
  let carry = '', line = 1;
  for await (const text of decodeFile(file)) {
    const parts = (carry + text).split('\n');
    carry = parts.pop()!;
    for (const p of parts) yield { text: p.endsWith('\r') ? p.slice(0, -1) : p, line: line++ };
  }
  if (carry) yield { text: carry.endsWith('\r') ? carry.slice(0, -1) : carry, line };
}

async function* readJsonl(file: string): AsyncGenerator<SourceRecord> {
  for await (const { text, line } of linesOf(file)) {
    const where = `${file}:${line}`;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      yield { row: invalid(where, `malformed JSON (${(e as Error).message})`), where };
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      yield { row: invalid(where, `expected a JSON object but found ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`), where };
    } else {
      yield { row: value as Row, where };
    }
  }
}

async function* readCsv(file: string, delimiter: string): AsyncGenerator<SourceRecord> {
  const parser = parseCsv({ columns: true, delimiter, bom: true, info: true, relax_column_count: true, skip_empty_lines: true });
  // Waits for room in the parser, or for its end: a parser that failed mid-file never drains, and
  // waiting for 'drain' alone left loadDataset unsettled forever.
  const room = () => new Promise<void>((resolve) => {
    const done = () => {
      parser.off('drain', done), parser.off('close', done);
      resolve();
    };
    parser.once('drain', done), parser.once('close', done);
  });
  const feed = (async () => {
    try {
      for await (const text of decodeFile(file)) {
        if (parser.destroyed) return;
        if (!parser.write(text)) await room();
      }
      if (!parser.destroyed) parser.end();
    } catch (e) {
      parser.destroy(e as Error);
    }
  })();
  try {
    for await (const item of parser as AsyncIterable<{ record: Row; info: { lines: number; invalid_field_length: number } }>) {
      yield { row: item.record, where: `${file}:${item.info.lines}` };
    }
  } catch (e) {
    if (e instanceof TunekitError) throw e;
    const err = e as Error & { lines?: number };
    throw new InvalidRecord(`${file}:${err.lines ?? '?'}`, `malformed CSV (${err.message})`);
  } finally {
    if (!parser.destroyed) parser.destroy(); // stopped early (an error, or the caller broke off): end the feed
    await feed;
  }
}

async function* readText(file: string, unit: 'line' | 'paragraph' | 'document'): AsyncGenerator<SourceRecord> {
  let para: string[] = [], start = 1;
  for await (const { text, line } of linesOf(file)) {
    if (unit === 'line') {
      yield { row: { text }, where: `${file}:${line}` };
    } else if (unit === 'paragraph' && text.trim() === '') {
      if (para.length) yield { row: { text: para.join('\n') }, where: `${file}:${start}` };
      para = [];
      start = line + 1;
    } else {
      if (para.length === 0) start = line;
      para.push(text);
    }
  }
  if (unit !== 'line' && para.length) yield { row: { text: para.join('\n') }, where: `${file}:${start}` };
}

/**
 * Every row group must hold one chunk for each of the schema's columns, and nothing else. The
 * decoder starts reading a group's chunks before it looks each one up in the schema: a chunk
 * naming a column the schema lacks stops it midway, and the reads it had started then fail with
 * no one awaiting them, an unhandled rejection that ends the process.
 */
function checkColumnChunks(metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>): void {
  const leaves: string[] = [];
  const walk = (node: ReturnType<typeof parquetSchema>) => {
    if (node.children.length === 0) leaves.push(node.path.join('.'));
    for (const child of node.children) walk(child);
  };
  walk(parquetSchema(metadata));
  const expected = new Set(leaves);
  for (const [g, group] of metadata.row_groups.entries()) {
    const paths = group.columns.map((c) => c.meta_data?.path_in_schema?.join('.') ?? '(none)');
    const stray = paths.find((p) => !expected.has(p));
    if (stray !== undefined || paths.length !== expected.size || new Set(paths).size !== paths.length) {
      throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `row group ${g + 1} has column chunks ${show(paths)} where the schema has the columns ${show(leaves)}${stray !== undefined ? ` (no column ${JSON.stringify(stray)})` : ''}`);
    }
  }
}

async function* readParquet(file: string): AsyncGenerator<SourceRecord> {
  let buffer, metadata;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
    checkColumnChunks(metadata);
  } catch (e) {
    if (e instanceof TunekitError) throw new TunekitError(e.code, `${file}: ${e.message}`, { cause: e });
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: not a readable Parquet file (${(e as Error).message})`, { cause: e });
  }
  let rowStart = 0;
  const groups = metadata.row_groups.length;
  for (const [g, group] of metadata.row_groups.entries()) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd, compressors: (await compressorsOnce()) as never });
      if (rows.length !== rowEnd - rowStart) throw new Error(`${rows.length} rows decoded where the metadata says ${rowEnd - rowStart}`);
    } catch (e) {
      const message = (e as Error).message ?? String(e);
      // The decompressors are WebAssembly, whose memories reserve ~10 GB of address space each:
      // under an address-space limit (ulimit -v, some containers) they cannot start.
      if (e instanceof RangeError && /out of memory|cannot allocate|allocation failed/i.test(message)) {
        throw new TunekitError('ERR_TUNEKIT_OUT_OF_MEMORY', `${file}: out of memory decoding row group ${g + 1} of ${groups} (${message}); the Parquet decompressors are WebAssembly, which needs about 10 GB of address space: raise ulimit -v, or convert the file to JSONL`, { cause: e });
      }
      // The decoder's own errors (thrift, decompression, page bounds) say what broke, not where.
      throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: row group ${g + 1} of ${groups} (rows ${rowStart + 1}-${rowEnd}) could not be decoded: ${message}. The file is damaged, or uses a Parquet feature this reader lacks`, { cause: e });
    }
    for (let i = 0; i < rows.length; i++) yield { row: rows[i] as Row, where: `${file} row ${rowStart + i + 1}` };
    rowStart = rowEnd;
  }
}
