// safetensors: files written by the reference implementation (test/reference/make_safetensors_fixtures.py),
// our writer read back, sharded models, files over 2 GiB, and every kind of corrupt header.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openSafetensors, Tensor, TunekitError, writeSafetensors, writeShardedSafetensors } from '../lib/index.js';

const fixtures = fileURLToPath(new URL('./reference/fixtures/safetensors/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'tunekit-st-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The formula the fixture generator used: exact in f32, f16 and bf16. */
const values = (n: number) => Array.from({ length: n }, (_, i) => ((i * 37) % 101 - 50) / 8);

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}
const bf16ToFloat = (b: number) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]!;

/** A file with a hand-made header and `data` bytes after it. */
function rawFile(name: string, header: unknown, data = new Uint8Array(0), lengthOverride?: bigint): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  const file = join(work, name);
  writeFileSync(file, Buffer.concat([prefix, json, data]));
  return file;
}

async function expectCorrupt(file: string, pattern: RegExp) {
  const err = await openSafetensors(file).catch((e) => e);
  expect(err).toBeInstanceOf(TunekitError);
  expect(err.code).toBe('ERR_TUNEKIT_CORRUPT_FILE');
  expect(err.message).toContain(file);
  expect(err.message).toMatch(pattern);
}

describe('reading files from the reference implementation', () => {
  it('reads every supported dtype with the right shape and values', async () => {
    const r = await openSafetensors(join(fixtures, 'single.safetensors'));
    expect(r.metadata).toEqual({ format: 'pt', source: 'reference' });
    const f32 = await r.read('f32');
    expect(f32.dtype).toBe('f32');
    expect(f32.shape).toEqual([2, 3, 4]);
    expect([...f32.data]).toEqual(values(24));
    const f16 = await r.read('f16');
    expect([...f16.data].map(halfToFloat)).toEqual(values(10));
    const i32 = await r.read('i32');
    expect(i32.shape).toEqual([3, 2]);
    expect([...i32.data]).toEqual([0, 1, 2, 3, 4, 5].map((i) => i * -7 + 3));
    expect([...(await r.read('u8')).data]).toEqual([0, 50, 100, 150, 200]);
    const scalar = await r.read('scalar');
    expect(scalar.shape).toEqual([]);
    expect([...scalar.data]).toEqual([2.5]);
    expect((await r.read('empty')).shape).toEqual([0, 3]);
    await r.close();

    const b = await openSafetensors(join(fixtures, 'bf16.safetensors'));
    const bf = await b.read('bf16');
    expect(bf.dtype).toBe('bf16');
    expect([...bf.data].map(bf16ToFloat)).toEqual(values(12));
    await b.close();
  });

  it('lists dtypes it does not load and says so when asked to read them', async () => {
    const r = await openSafetensors(join(fixtures, 'single.safetensors'));
    expect(r.info('i64')).toMatchObject({ dtype: 'I64', shape: [4], byteLength: 32 });
    const err = await r.read('i64').catch((e) => e);
    expect(err.code).toBe('ERR_TUNEKIT_UNSUPPORTED');
    expect(err.message).toMatch(/"i64" has dtype I64; tunekit reads F32, F16, BF16, I32, U8/);
    expect(() => r.info('nope')).toThrow(/no tensor named "nope"/);
    await r.close();
  });

  it('reads a sharded model through its index, from the folder or the index file', async () => {
    for (const path of [join(fixtures, 'sharded'), join(fixtures, 'sharded', 'model.safetensors.index.json')]) {
      const r = await openSafetensors(path);
      expect(r.names().sort()).toEqual(['model.embed.weight', 'model.head.bias', 'model.head.weight']);
      expect(r.files).toHaveLength(2);
      expect(r.metadata.total_size).toBe(String((8 + 6 + 3) * 4));
      expect([...(await r.read('model.head.weight')).data]).toEqual(values(6));
      expect((await r.read('model.embed.weight')).shape).toEqual([2, 4]);
      await r.close();
    }
  });
});

describe('writing', () => {
  it('round-trips every dtype with metadata and an 8-byte aligned data section', async () => {
    const tensors = {
      w: Tensor.from('f32', [2, 3], [1, -2, 3.5, 0, 1e-8, -7]),
      h: Tensor.from('f16', [2], [0x3c00, 0xc000]),
      b: Tensor.from('bf16', [3], [0x3f80, 0x4000, 0xbf80]),
      i: Tensor.from('i32', [2, 2], [1, -1, 2 ** 31 - 1, -(2 ** 31)]),
      u: Tensor.from('u8', [3], [0, 128, 255]),
      s: Tensor.from('f32', [], [42]),
    };
    const file = join(work, 'roundtrip.safetensors');
    await writeSafetensors(file, tensors, { metadata: { format: 'pt' } });
    const bytes = readFileSync(file);
    expect((8 + Number(bytes.readBigUInt64LE(0))) % 8).toBe(0);
    const r = await openSafetensors(file);
    expect(r.names()).toEqual(Object.keys(tensors));
    expect(r.metadata).toEqual({ format: 'pt' });
    for (const [name, t] of Object.entries(tensors)) {
      const back = await r.read(name);
      expect(back.dtype).toBe(t.dtype);
      expect(back.shape).toEqual(t.shape);
      expect(Buffer.from(back.bytes).equals(Buffer.from(t.bytes))).toBe(true);
    }
    await r.close();
    expect(readdirSync(work).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('shards like save_pretrained and reads the result back', async () => {
    const folder = join(work, 'sharded-out');
    const tensors = new Map([
      ['a', Tensor.from('f32', [4], [1, 2, 3, 4])],
      ['b', Tensor.from('f32', [4], [5, 6, 7, 8])],
      ['c', Tensor.from('f32', [2], [9, 10])],
    ]);
    const files = await writeShardedSafetensors(folder, tensors, { maxShardBytes: 24 });
    expect(files.map((f) => f.slice(folder.length + 1))).toEqual([
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
    const index = JSON.parse(readFileSync(join(folder, 'model.safetensors.index.json'), 'utf8'));
    expect(index.metadata.total_size).toBe(40);
    expect(index.weight_map).toEqual({ a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' });
    const r = await openSafetensors(folder);
    expect([...(await r.read('c')).data]).toEqual([9, 10]);
    await r.close();
    // Everything in one shard gives a single model.safetensors.
    const single = await writeShardedSafetensors(join(work, 'one-shard'), tensors);
    expect(single).toEqual([join(work, 'one-shard', 'model.safetensors')]);
  });

  const tiny = join(work, 'tiny-fs');
  let mounted = false;
  try {
    mkdirSync(tiny);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', tiny], { stdio: 'ignore' });
    mounted = true;
  } catch {
    mounted = false;
  }
  afterAll(() => {
    if (mounted) execFileSync('umount', [tiny]);
  });

  it.skipIf(!mounted)('on a full disk fails clearly and leaves the previous file intact', async () => {
    const file = join(tiny, 'model.safetensors');
    await writeSafetensors(file, { a: Tensor.from('f32', [2], [1, 2]) });
    const before = readFileSync(file);
    const err = await writeSafetensors(file, { big: Tensor.zeros('f32', [1 << 16]) }).catch((e) => e);
    expect(err).toBeInstanceOf(TunekitError);
    expect(err.code).toBe('ERR_TUNEKIT_IO');
    expect(err.message).toMatch(/could not write .*model\.safetensors: no space left on device/);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(readdirSync(tiny)).toEqual(['model.safetensors']);
  });

  it('handles files over 2 GiB without whole-file buffers', async () => {
    const big = Tensor.zeros('u8', [2 ** 31 + 24]);
    const bytes = big.bytes;
    bytes[0] = 1;
    bytes[2 ** 31 - 1] = 2;
    bytes[2 ** 31] = 3;
    bytes[bytes.length - 1] = 4;
    const tail = Tensor.from('f32', [3], [1.5, -2.5, 3.5]);
    const file = join(work, 'big.safetensors');
    await writeSafetensors(file, { big, tail });
    const r = await openSafetensors(file);
    expect(r.info('tail').offset).toBeGreaterThan(2 ** 31);
    expect([...(await r.read('tail')).data]).toEqual([1.5, -2.5, 3.5]);
    const back = (await r.read('big')).bytes;
    expect([back[0], back[2 ** 31 - 1], back[2 ** 31], back[back.length - 1], back[12345]]).toEqual([1, 2, 3, 4, 0]);
    await r.close();
    rmSync(file);
  });
});

describe('corrupt or hostile files', () => {
  const f32 = (shape: number[], offsets: [number, number]) => ({ dtype: 'F32', shape, data_offsets: offsets });

  it('rejects a header length beyond the file, without allocating it', async () => {
    await expectCorrupt(rawFile('len.safetensors', { a: f32([1], [0, 4]) }, new Uint8Array(4), 1n << 62n), /header length \d+ exceeds/);
    await expectCorrupt(rawFile('len2.safetensors', {}, new Uint8Array(0), 1000n), /header length 1000 exceeds the 2 bytes/);
  });

  it('rejects files too short for a header', async () => {
    const file = join(work, 'short.safetensors');
    writeFileSync(file, Buffer.from([1, 2, 3]));
    await expectCorrupt(file, /shorter than the 8-byte header length/);
  });

  it('rejects invalid JSON and non-object headers', async () => {
    await expectCorrupt(rawFile('json.safetensors', '{"a": {"dtype": '), /not valid JSON/);
    await expectCorrupt(rawFile('array.safetensors', '[1, 2]'), /not a JSON object/);
    await expectCorrupt(rawFile('utf8.safetensors', Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1')), /UTF-8|JSON/);
  });

  it('rejects out-of-range and overlapping offsets', async () => {
    await expectCorrupt(rawFile('range.safetensors', { a: f32([2], [0, 8]) }, new Uint8Array(4)), /"a" ends at data offset 8, beyond the 4-byte data section/);
    await expectCorrupt(rawFile('neg.safetensors', { a: f32([1], [4, 0]) }, new Uint8Array(4)), /data_offsets \[4,0\]/);
    await expectCorrupt(
      rawFile('overlap.safetensors', { a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, new Uint8Array(12)),
      /tensors "a" and "b" overlap/,
    );
  });

  it('requires the tensors to cover the data section exactly and the header to be one clean object, as the reference does', async () => {
    const a = JSON.stringify({ a: f32([1], [0, 4]) });
    // A header length one byte short of the padded header: the data section would start a byte early.
    await expectCorrupt(rawFile('short-len.safetensors', a + '  ', new Uint8Array(4), BigInt(a.length + 1)), /the tensors cover 4 bytes of the 5-byte data section/);
    await expectCorrupt(rawFile('gap.safetensors', { a: f32([1], [0, 4]), b: f32([1], [8, 12]) }, new Uint8Array(12)), /4 bytes of the data section before tensor "b" \(data offset 4\) belong to no tensor/);
    await expectCorrupt(rawFile('tail.safetensors', { a: f32([1], [0, 4]) }, new Uint8Array(8)), /the tensors cover 4 bytes of the 8-byte data section/);
    await expectCorrupt(rawFile('empty.safetensors', {}, new Uint8Array(4)), /the tensors cover 0 bytes of the 4-byte data section/);
    await expectCorrupt(rawFile('bom.safetensors', '\ufeff' + a, new Uint8Array(4)), /header is not valid JSON/);
    await expectCorrupt(rawFile('space.safetensors', ' ' + a, new Uint8Array(4)), /header starts with " "/);
    const dup = `{"a": ${JSON.stringify(f32([1], [0, 4]))}, "a": ${JSON.stringify(f32([1], [0, 4]))}}`;
    await expectCorrupt(rawFile('dup.safetensors', dup, new Uint8Array(4)), /header names "a" twice/);
    // Keys nested deeper, strings holding quotes and braces, and empty tensors are fine.
    const ok = rawFile('ok.safetensors', { __metadata__: { 'x"}{': 'a', y: '"a"' }, e: f32([0], [0, 0]), a: f32([1], [0, 4]) }, new Uint8Array(4));
    const f = await openSafetensors(ok);
    expect(f.metadata).toEqual({ 'x"}{': 'a', y: '"a"' });
    await f.close();
  });

  it('rejects shape, dtype and byte-length mismatches', async () => {
    await expectCorrupt(rawFile('mismatch.safetensors', { a: f32([3], [0, 8]) }, new Uint8Array(8)), /"a" has 8 bytes of data but dtype F32 and shape \[3\] need 12/);
    await expectCorrupt(rawFile('dtype.safetensors', { a: { dtype: 'F31', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), /unknown dtype "F31"/);
    await expectCorrupt(rawFile('shape.safetensors', { a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /shape \[-1\]/);
    await expectCorrupt(rawFile('huge.safetensors', { a: f32([2 ** 40, 2 ** 40], [0, 4]) }, new Uint8Array(4)), /element count too large/);
    await expectCorrupt(rawFile('meta.safetensors', { __metadata__: { a: 1 } }), /__metadata__.a is not a string/);
  });

  it('names the index and the tensor when a sharded model is inconsistent', async () => {
    const folder = join(work, 'bad-index');
    mkdirSync(folder, { recursive: true });
    await writeSafetensors(join(folder, 'shard.safetensors'), { a: Tensor.zeros('f32', [1]) });
    writeFileSync(join(folder, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'shard.safetensors', b: 'shard.safetensors' } }));
    await expect(openSafetensors(folder)).rejects.toThrow(/model\.safetensors\.index\.json: weight_map says "b" is in shard\.safetensors, but that shard has no such tensor/);
    writeFileSync(join(folder, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: '../shard.safetensors' } }));
    await expect(openSafetensors(folder)).rejects.toThrow(/must be a file name in the same folder/);
    writeFileSync(join(folder, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'missing.safetensors' } }));
    await expect(openSafetensors(folder)).rejects.toMatchObject({ code: 'ERR_TUNEKIT_IO' });
    expect(existsSync(join(folder, 'shard.safetensors'))).toBe(true);
  });

  // Issue #14: metadata nested a million levels deep overflowed the stack (a RangeError) when its
  // values were turned into strings; nested values are now left out, and a non-object is refused.
  it('reads the scalars of an index\'s metadata however deep the rest of it nests', async () => {
    const folder = join(work, 'deep-index');
    mkdirSync(folder, { recursive: true });
    await writeSafetensors(join(folder, 'shard.safetensors'), { a: Tensor.zeros('f32', [1]) });
    const deep = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    writeFileSync(join(folder, 'model.safetensors.index.json'), `{"metadata": {"total_size": 4, "deep": ${deep}}, "weight_map": {"a": "shard.safetensors"}}`);
    const r = await openSafetensors(folder);
    expect(r.metadata).toEqual({ total_size: '4' });
    await r.close();
    writeFileSync(join(folder, 'model.safetensors.index.json'), `{"metadata": ${deep}, "weight_map": {"a": "shard.safetensors"}}`);
    await expect(openSafetensors(folder)).rejects.toThrow(/model\.safetensors\.index\.json: expected "metadata" to be an object .* but it is an array/);
  });
});
