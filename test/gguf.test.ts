// GGUF: a file written by llama.cpp's gguf-py (test/reference/make_gguf_fixtures.py) read with
// every metadata type and tensor type we support, values checked against gguf-py's own
// dequantization; and hand-built hostile files that must fail with clear errors.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openGguf, openSafetensors, Tensor, TunekitError, Weights, writeGguf } from '../lib/index.js';
import { MAX_METADATA_ARRAY } from '../lib/gguf/read.js';

const fixtures = fileURLToPath(new URL('./reference/fixtures/gguf/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'tunekit-gguf-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}
const bf16ToFloat = (b: number) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]!;

describe('a GGUF file written by gguf-py', () => {
  it('has the metadata gguf-py wrote, of every value type', async () => {
    const g = await openGguf(join(fixtures, 'tiny.gguf'));
    expect(g.version).toBe(3);
    expect(g.metadata.get('general.architecture')).toBe('llama');
    expect(g.metadata.get('general.name')).toBe('tunekit-tiny');
    expect(g.metadata.get('tiny.u32')).toBe(4000000000);
    expect(g.metadata.get('tiny.i32')).toBe(-7);
    expect(g.metadata.get('tiny.f32')).toBe(0.25);
    expect(g.metadata.get('tiny.bool')).toBe(true);
    expect(g.metadata.get('tiny.u64')).toBe(2 ** 40 + 3);
    expect(g.metadata.get('tiny.f64')).toBe(-1.5);
    expect(g.metadata.get('tiny.str')).toBe('héllo ✓');
    expect(g.metadata.get('tiny.tokens')).toEqual(['<s>', 'a', 'bc', '</s>']);
    expect(g.metadata.get('tiny.ints')).toEqual([1, -2, 3]);
    await g.close();
  });

  it('reads every tensor with the values gguf-py dequantizes', async () => {
    const g = await openGguf(join(fixtures, 'tiny.gguf'));
    const expected = await openSafetensors(join(fixtures, 'tiny.expected.safetensors'));
    for (const name of expected.names()) {
      const want = (await expected.read(name)) as Tensor<'f32'>;
      const info = g.tensors.get(name)!;
      expect(info.shape, name).toEqual(want.shape);
      const got = await g.read(name);
      let values: number[];
      if (got instanceof Weights) {
        expect(got.format).toBe(name.replace('vec_', ''));
        values = [...(await got.dequantize()).data];
      } else if (got.dtype === 'f16') {
        values = [...got.data].map(halfToFloat);
      } else if (got.dtype === 'bf16') {
        values = [...got.data].map(bf16ToFloat);
      } else {
        values = [...got.data];
      }
      expect(values, name).toEqual([...want.data]);
    }
    await expected.close();
    await g.close();
  });
});

/** A minimal GGUF writer for hostile inputs (independent of the reader under test). */
function build(parts: { version?: number; kv?: Buffer[]; tensors?: Buffer[]; tensorCount?: bigint; kvCount?: bigint; data?: Buffer; magic?: number }): string {
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
  const u64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b; };
  const header = Buffer.concat([
    u32(parts.magic ?? 0x46554747), u32(parts.version ?? 3),
    u64(parts.tensorCount ?? BigInt(parts.tensors?.length ?? 0)), u64(parts.kvCount ?? BigInt(parts.kv?.length ?? 0)),
    ...(parts.kv ?? []), ...(parts.tensors ?? []),
  ]);
  const pad = Buffer.alloc((32 - (header.length % 32)) % 32);
  const file = join(work, `f${Math.random().toString(36).slice(2)}.gguf`);
  writeFileSync(file, Buffer.concat([header, pad, parts.data ?? Buffer.alloc(0)]));
  return file;
}
const str = (s: string) => { const b = Buffer.from(s); const n = Buffer.alloc(8); n.writeBigUInt64LE(BigInt(b.length)); return Buffer.concat([n, b]); };
const kvString = (k: string, v: string) => Buffer.concat([str(k), Buffer.from([8, 0, 0, 0]), str(v)]);
function tensor(name: string, dims: number[], type: number, offset: number) {
  const parts = [str(name), Buffer.from(new Uint32Array([dims.length]).buffer)];
  for (const d of dims) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(d)); parts.push(b); }
  const t = Buffer.alloc(12); t.writeUInt32LE(type, 0); t.writeBigUInt64LE(BigInt(offset), 4);
  return Buffer.concat([...parts, t]);
}

async function expectCorrupt(file: string, pattern: RegExp) {
  const err = await openGguf(file).catch((e) => e);
  expect(err).toBeInstanceOf(TunekitError);
  expect(err.code).toBe('ERR_TUNEKIT_CORRUPT_FILE');
  expect(err.message).toContain(file);
  expect(err.message).toMatch(pattern);
}

describe('hostile GGUF files', () => {
  it('rejects a wrong magic or version', async () => {
    await expectCorrupt(build({ magic: 0x12345678 }), /missing the "GGUF" magic/);
    await expectCorrupt(build({ version: 7 }), /version 7; tunekit reads versions 2 and 3/);
  });

  it('rejects counts and lengths beyond the file without allocating them', async () => {
    await expectCorrupt(build({ kvCount: 1n << 60n }), /too large|exceed the file size/);
    const hugeString = Buffer.concat([str('k'), Buffer.from([8, 0, 0, 0]), Buffer.from(new BigUint64Array([1n << 40n]).buffer)]);
    await expectCorrupt(build({ kv: [hugeString] }), /metadata k claims 1099511627776 bytes/);
    const hugeArray = Buffer.concat([str('arr'), Buffer.from([9, 0, 0, 0, 4, 0, 0, 0]), Buffer.from(new BigUint64Array([1n << 50n]).buffer)]);
    await expectCorrupt(build({ kv: [hugeArray] }), /metadata arr claims \d+ elements/);
    await expectCorrupt(build({ kv: [kvString('a', 'b')], kvCount: 40n }), /past the end/);
  });

  it('reads metadata arrays in bulk, bounded: a count over the cap or past the bytes left is refused before anything is read', async () => {
    const arr = (type: number, n: bigint, body: Buffer) =>
      Buffer.concat([str('arr'), Buffer.from([9, 0, 0, 0, type, 0, 0, 0]), Buffer.from(new BigUint64Array([n]).buffer), body]);
    // 3 Mi u16 values: several read windows, every value back.
    const n = 3 * 2 ** 20, values = Uint16Array.from({ length: n }, (_, i) => (i * 7919) % 65536);
    const g = await openGguf(build({ kv: [arr(2, BigInt(n), Buffer.from(values.buffer))] }));
    const got = g.metadata.get('arr') as number[];
    expect(got).toHaveLength(n);
    expect(got[0]).toBe(0);
    expect(got[n - 1]).toBe(values[n - 1]);
    expect(got.every((v, i) => v === values[i])).toBe(true);
    await g.close();
    await expectCorrupt(build({ kv: [arr(0, BigInt(MAX_METADATA_ARRAY + 1), Buffer.alloc(0))] }), new RegExp(`metadata arr claims ${MAX_METADATA_ARRAY + 1} elements; tunekit reads arrays of at most ${MAX_METADATA_ARRAY}`));
    // f64 elements take 8 bytes each, strings at least 8: counts are held to that, not to one byte each.
    await expectCorrupt(build({ kv: [arr(12, 1000n, Buffer.alloc(4000))] }), /metadata arr claims 1000 elements \(at least 8000 bytes\) but only \d+ bytes remain/);
    await expectCorrupt(build({ kv: [arr(8, 1000n, Buffer.alloc(4000))] }), /metadata arr claims 1000 elements \(at least 8000 bytes\)/);
    await expectCorrupt(build({ kv: [arr(7, 3n, Buffer.from([1, 0, 2]))] }), /metadata arr\[2\] has boolean byte 2/);
  });

  it('rejects bad tensor infos', async () => {
    const data = Buffer.alloc(64);
    await expectCorrupt(build({ tensors: [tensor('w', [4, 2], 0, 0)], data: Buffer.alloc(16) }), /tensor w \(32 bytes at \d+\) runs past the end/);
    await expectCorrupt(build({ tensors: [tensor('w', [4], 99, 0)], data }), /unknown ggml type 99/);
    await expectCorrupt(build({ tensors: [tensor('w', [48], 2, 0)], data }), /do not fit Q4_0 blocks of 32/);
    await expectCorrupt(build({ tensors: [tensor('w', [4], 0, 8)], data }), /offset 8 is not aligned to 32/);
    await expectCorrupt(build({ tensors: [tensor('a', [16], 0, 0), tensor('b', [4], 0, 32)], data: Buffer.alloc(96) }), /tensors a and b overlap/);
    await expectCorrupt(build({ tensors: [tensor('w', [4, 1, 1, 1, 1], 0, 0)], data }), /5 dimensions/);
  });

  it('lists types it cannot read and says so when asked', async () => {
    const file = build({ tensors: [tensor('k', [64], 9, 0)], data: Buffer.alloc(96) });
    const g = await openGguf(file);
    expect(g.tensors.get('k')).toMatchObject({ type: 'Q8_1', shape: [64], byteLength: 72 });
    await expect(g.read('k')).rejects.toThrow(/tensor k has type Q8_1; tunekit reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K/);
    await g.close();
    expect(readFileSync(file).length).toBeGreaterThan(0);
  });

  it('writes tensors already in a block format (the benches\' quantized models) as they are', async () => {
    // Bytes of one Q4_0 block per row: fp16 scale 0.5 (0x3800), codes 0..15 twice.
    const rows = 3, block = Buffer.concat([Buffer.from([0x00, 0x38]), Buffer.from(Array.from({ length: 16 }, (_, j) => j | ((15 - j) << 4)))]);
    const data = new Uint8Array(Buffer.concat(Array.from({ length: rows }, () => block)));
    const file = join(work, 'blocks.gguf');
    await writeGguf(file, { 'general.architecture': { type: 'string', value: 'llama' } }, { w: { ggufType: 2, shape: [rows, 32], data }, n: Tensor.from('f32', [2], [1, 2]) });
    const g = await openGguf(file);
    expect(g.tensors.get('w')).toMatchObject({ type: 'Q4_0', shape: [rows, 32], byteLength: data.length });
    const w = (await g.read('w')) as Weights;
    const got = (await w.dequantize()).data;
    // w = (q − 8)·0.5: element j of a block is code j (low nibbles), element 16 + j is 15 − j (high).
    const expected = Array.from({ length: 32 }, (_, e) => ((e < 16 ? e : 31 - e) - 8) * 0.5);
    for (let r = 0; r < rows; r++) expect([...got.subarray(32 * r, 32 * (r + 1))]).toEqual(expected);
    expect([...((await g.read('n')) as Tensor<'f32'>).data]).toEqual([1, 2]);
    await g.close();
  });
});
