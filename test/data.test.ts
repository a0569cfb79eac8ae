// The data pipeline: every source and format, loss masks, cleaning, seeded splits, streaming,
// batching with packing, and bad input named by file, line and field. The tokenizer is the tiny
// Hugging Face one from test/reference/make_tiny_tokenizer.py (chat template included); Parquet
// files come from pyarrow (test/reference/make_data_fixtures.py).
import { readFileSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batches, loadDataset, readRecords, redact, tokenizerFromFolder, TunekitError, type Example, type TextTokenizer } from '../lib/index.js';

const tokDir = fileURLToPath(new URL('./reference/fixtures/tiny-tokenizer/', import.meta.url));
const dataDir = fileURLToPath(new URL('./reference/fixtures/data/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'tunekit-data-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let tok: TextTokenizer;
beforeAll(async () => {
  tok = (await tokenizerFromFolder(tokDir))!;
});

const file = (name: string, text: string | Buffer) => {
  const p = join(work, name);
  writeFileSync(p, text);
  return p;
};
const all = async (it: AsyncIterable<Example>) => {
  const out: Example[] = [];
  for await (const e of it) out.push(e);
  return out;
};
const targets = (e: Example) => [...e.labels].filter((l) => l !== -100);

describe('formats', () => {
  it('text: every token a target, EOS at the end', async () => {
    const p = file('t.jsonl', '{"text": "hello world"}\n{"text": "the cat"}\n');
    const d = await loadDataset(p, tok, { shuffle: false });
    expect(d.format).toBe('text');
    const [a] = await all(d.train.examples());
    expect([...a!.inputIds]).toEqual([...tok.encode('hello world'), tok.eosTokenId]);
    expect([...a!.labels]).toEqual([...a!.inputIds]);
    expect(a!.where).toBe(`${p}:1`);
  });

  it('prompt/completion: loss only on the completion (and its EOS)', async () => {
    const p = file('pc.jsonl', JSON.stringify({ prompt: 'Q: the cat?', completion: ' A: hello' }) + '\n');
    const [e] = await all((await loadDataset(p, tok)).train.examples());
    const prompt = tok.encode('Q: the cat?'), completion = tok.encode(' A: hello', { addSpecialTokens: false });
    expect([...e!.inputIds]).toEqual([...prompt, ...completion, tok.eosTokenId]);
    expect([...e!.labels]).toEqual([...prompt.map(() => -100), ...completion, tok.eosTokenId]);
  });

  it('messages: rendered by the chat template, loss only on assistant turns', async () => {
    const rows = JSON.parse(readFileSync(join(dataDir, 'parquet-rows.json'), 'utf8')).chat;
    const d = await loadDataset(join(dataDir, 'chat.parquet'), tok, { shuffle: false });
    expect(d.format).toBe('messages');
    const ex = await all(d.train.examples());
    expect(ex).toHaveLength(2);
    const second = ex[1]!;
    // The tokens are the whole rendered conversation; the targets are the assistant turns with their end token.
    expect(tok.decode([...second.inputIds])).toBe(tok.applyChatTemplate(rows[1].messages));
    expect(tok.decode(targets(second))).toBe('4<|im_end|>\n6<|im_end|>\n');
    expect(tok.decode(targets(ex[0]!))).toBe('Hello!<|im_end|>\n');
  });

  it('messages: a long conversation stops at maxLength (the first maxLength tokens and targets of the whole), a huge one within a huge maxLength is refused by name; records over ~120k tokens load', async () => {
    const convo = (turns: number) => ({ messages: Array.from({ length: turns }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `turn ${i}` })) });
    const whole = (await all((await loadDataset(file('c200.jsonl', JSON.stringify(convo(200)) + '\n'), tok, { shuffle: false, maxLength: 1 << 20 })).train.examples()))[0]!;
    const cut = (await all((await loadDataset(file('c200b.jsonl', JSON.stringify(convo(200)) + '\n'), tok, { shuffle: false, maxLength: 300 })).train.examples()))[0]!;
    expect(whole.inputIds.length).toBeGreaterThan(300);
    expect([...cut.inputIds]).toEqual([...whole.inputIds.subarray(0, 300)]);
    expect([...cut.labels]).toEqual([...whole.labels.subarray(0, 300)]);
    // 10,000 turns within maxLength 1024: only the turns that fit are rendered.
    const long = await loadDataset(file('c10k.jsonl', JSON.stringify(convo(10_000)) + '\n'), tok, { shuffle: false, maxLength: 1024 });
    expect((await all(long.train.examples()))[0]!.inputIds.length).toBe(1024);
    await expect(loadDataset(file('c10k2.jsonl', JSON.stringify(convo(10_000)) + '\n'), tok, { maxLength: 1 << 20 }))
      .rejects.toThrow(/a conversation of 10000 messages is too long to locate its assistant turns within maxLength 1048576/);
    // One text record of 200k tokens: no stack overflow from spreading its ids.
    const big = await loadDataset(file('big.jsonl', JSON.stringify({ text: 'cat '.repeat(200_000) }) + '\n'), tok, { maxLength: 1 << 20 });
    expect((await all(big.train.examples()))[0]!.inputIds.length).toBeGreaterThan(150_000);
  });

  it('classification: text + label, no token targets', async () => {
    const p = file('c.csv', 'text,label\n"hello, world",spam\nthe cat,ham\n');
    const d = await loadDataset(p, tok, { shuffle: false });
    expect(d.format).toBe('classification');
    const ex = await all(d.train.examples());
    expect(ex.map((e) => e.label)).toEqual(['spam', 'ham']);
    expect([...ex[0]!.inputIds]).toEqual(tok.encode('hello, world'));
  });

  it('configurable columns', async () => {
    const p = file('cols.jsonl', JSON.stringify({ q: 'the', a: ' cat' }) + '\n');
    const d = await loadDataset(p, tok, { format: 'prompt-completion', columns: { prompt: 'q', completion: 'a' } });
    expect(tok.decode(targets((await all(d.train.examples()))[0]!))).toBe(' cat<|im_end|>');
  });
});

describe('sources', () => {
  it('reads Parquet (snappy, several row groups) as pyarrow wrote it', async () => {
    const rows = JSON.parse(readFileSync(join(dataDir, 'parquet-rows.json'), 'utf8')).pc;
    const got = [];
    for await (const r of readRecords(join(dataDir, 'pc.parquet'))) got.push({ ...r.row, id: Number(r.row.id) });
    expect(got).toEqual(rows);
  });

  // Issue #14: a damaged page (thrift header, compressed bytes, lengths) escaped as the decoder's
  // own Error or RangeError, naming neither the file nor where in it. Every damaged copy now loads
  // (the bytes hit values only) or is refused as corrupt, naming the file and the row group.
  it('refuses damaged Parquet pages by file and row group, never with a bare decoder error', async () => {
    const outcomes: Record<string, number> = {};
    for (const name of ['pc.parquet', 'chat.parquet']) {
      const original = readFileSync(join(dataDir, name));
      const dataEnd = original.length - 8 - original.readUInt32LE(original.length - 8); // pages end where the footer starts
      for (let seed = 0; seed < 40; seed++) {
        const damaged = Buffer.from(original), at = 4 + ((seed * 7919) % (dataEnd - 5));
        damaged[at]! ^= 0xff, damaged[at + 1]! ^= 0x5a;
        const path = file(`damaged-${seed}-${name}`, '');
        writeFileSync(path, damaged);
        const outcome = await loadDataset(path, tok, {}).then(() => 'loaded', (e: unknown) => {
          if (!(e instanceof TunekitError)) return `not a TunekitError: ${String(e)}`;
          if (e.code === 'ERR_TUNEKIT_CORRUPT_FILE') expect(e.message).toMatch(new RegExp(`damaged-${seed}-${name.replace('.', '\\.')}: (row group \\d+ of \\d+ \\(rows \\d+-\\d+\\) could not be decoded|not a readable Parquet file)`));
          return e.code;
        });
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      }
    }
    expect(Object.keys(outcomes).filter((k) => k.startsWith('not a'))).toEqual([]);
    expect(outcomes.ERR_TUNEKIT_CORRUPT_FILE).toBeGreaterThan(20);
  });

  // A column chunk naming a column the schema lacks stopped the decoder midway through starting a
  // row group's reads; the reads it had started then failed unobserved, and the unhandled
  // rejection ended the process (found by npm run fuzz). Each occurrence of the column name in the
  // file is misspelt in turn: none may escape, and the chunk's is refused by name.
  it('refuses a Parquet column chunk the schema lacks before reading, without an unhandled rejection', async () => {
    const original = readFileSync(join(dataDir, 'chat.parquet'));
    const messages: string[] = [];
    for (let at = original.indexOf('messages'); at >= 0; at = original.indexOf('messages', at + 1)) {
      const damaged = Buffer.from(original);
      damaged.write('mmssages', at, 'latin1');
      const path = file(`misnamed-${at}.parquet`, damaged);
      messages.push(await loadDataset(path, tok, {}).then(() => 'loaded', (e: Error) => (e instanceof TunekitError ? e.message : `not a TunekitError: ${e}`)));
    }
    await new Promise((resolve) => setTimeout(resolve, 200)); // a rejection left behind would surface here
    expect(messages.length).toBeGreaterThan(1);
    expect(messages.filter((m) => m.startsWith('not a'))).toEqual([]);
    expect(messages.some((m) => /row group 1 has column chunks .* \(no column "mmssages\.list\.element\.\w+"\)/.test(m))).toBe(true);
  });

  // Issue #14 item 3: a CSV with a __proto__ column never settled. It loads now, as a column like
  // any other, and nothing reaches Object.prototype.
  it('loads a CSV whose header names __proto__ or constructor, without touching Object.prototype', async () => {
    for (const skipInvalid of [false, true]) {
      const d = await loadDataset(file('proto.csv', '__proto__,text,constructor\npolluted,hello world,x\nagain,the cat,y\n'), tok, { skipInvalid, shuffle: false });
      expect(d.stats.records).toBe(2);
      expect(d.format).toBe('text');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  it('reads CSV with quoted newlines, TSV, text by line / paragraph / document, and folders', async () => {
    const csv = file('q.csv', 'prompt,completion\n"line one\nline two", done\nsecond, two\n');
    const recs = [];
    for await (const r of readRecords(csv)) recs.push(r);
    expect(recs.map((r) => r.row.prompt)).toEqual(['line one\nline two', 'second']);
    expect(recs[1]!.where).toBe(`${csv}:4`);
    const tsv = file('x.tsv', 'text\tlabel\nhello\t1\n');
    for await (const r of readRecords(tsv)) expect(r.row).toEqual({ text: 'hello', label: '1' });
    const txt = file('doc.txt', 'a b\nc d\n\ne f\n');
    const units = async (textUnit: 'line' | 'paragraph' | 'document') => {
      const out = [];
      for await (const r of readRecords(txt, { textUnit })) out.push(r.row.text);
      return out;
    };
    expect(await units('line')).toEqual(['a b', 'c d', '', 'e f']);
    expect(await units('paragraph')).toEqual(['a b\nc d', 'e f']);
    expect(await units('document')).toEqual(['a b\nc d\n\ne f']);
    const folder = join(work, 'folder');
    mkdirSync(folder);
    writeFileSync(join(folder, 'b.jsonl'), '{"text": "second"}\n');
    writeFileSync(join(folder, 'a.txt'), 'first\n');
    writeFileSync(join(folder, 'notes.bin'), 'ignored');
    const names = [];
    for await (const r of readRecords(folder)) names.push(r.row.text);
    expect(names).toEqual(['first', 'second']);
    const mem = [];
    for await (const r of readRecords([{ text: 'x' }, { text: 'y' }])) mem.push(r.where);
    expect(mem).toEqual(['item 0', 'item 1']);
  });
});

describe('bad input', () => {
  it('names the file, line and field; skipInvalid counts instead', async () => {
    const p = file('bad.jsonl', '{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n{"prompt": "a", "completion": 3}\n{oops\n');
    await expect(loadDataset(p, tok)).rejects.toThrow(`${p}:2: missing field "completion"`);
    const d = await loadDataset(p, tok, { skipInvalid: true });
    expect(d.stats.skipped.invalid).toBe(3);
    expect(d.stats.errors).toEqual([
      `${p}:2: missing field "completion"`,
      `${p}:3: field "completion" is a number; expected a string`,
      expect.stringMatching(new RegExp(`^${p.replace(/[.]/g, '\\.')}:4: malformed JSON`)),
    ]);
    expect(d.stats.examples.train).toBe(1);
  });

  it('a CSV that goes bad mid-file rejects, naming the line, instead of never settling (issue 14)', async () => {
    // Large enough that the reader waits for the parser to drain when the parser fails.
    const rows = Array.from({ length: 50_000 }, (_, i) => `row number ${i} with some words,${i % 2}`);
    const p = file('stray.csv', ['text,label', 'hello,1', 'a,"b"c', ...rows].join('\n') + '\n');
    for (const skipInvalid of [false, true]) {
      await expect(loadDataset(p, tok, { skipInvalid, format: 'text' })).rejects.toThrow(`${p}:3: malformed CSV`);
    }
  });

  it('refuses bytes that are not UTF-8, naming the line', async () => {
    const p = file('latin1.txt', Buffer.concat([Buffer.from('fine\nalso fine\ncaf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    await expect(loadDataset(p, tok)).rejects.toThrow(`${p}:3: invalid UTF-8 byte`);
  });

  it('says what a record lacks when the format cannot be told, and refuses bad options', async () => {
    const p = file('odd.jsonl', '{"body": "x"}\n');
    await expect(loadDataset(p, tok)).rejects.toThrow(/odd\.jsonl:1: cannot tell the data format from fields \["body"\]/);
    await expect(loadDataset(p, tok, { validation: 1.5 })).rejects.toThrow(/validation/);
    await expect(loadDataset(p, tok, { maxLength: 0 } as never)).rejects.toThrow('Expected number >= 2 for maxLength but received 0');
    await expect(loadDataset(join(work, 'missing.jsonl'), tok)).rejects.toThrow(/Expected a data file or folder at .*missing\.jsonl/);
  });
});

describe('cleaning', () => {
  it('redacts what a labelled sample holds: every email, phone and card form in it, and nothing of its look-alikes (IP, ZIP+4, dates, versions, ISBN)', () => {
    const { cases } = JSON.parse(readFileSync(join(dataDir, 'redaction-sample.json'), 'utf8')) as { cases: { kind: string; text: string; find?: string }[] };
    const tag: Record<string, string> = { email: '[EMAIL]', phone: '[PHONE]', card: '[CARD]' };
    const missed: string[] = [];
    const caught: Record<string, [number, number]> = {};
    for (const c of cases) {
      const counts = { emails: 0, phones: 0, cards: 0 };
      const out = redact(c.text, counts);
      const ok = c.kind === 'none' ? out === c.text : out === c.text.replace(c.find!, tag[c.kind]!);
      (caught[c.kind] ??= [0, 0])[1]++;
      if (ok) caught[c.kind]![0]++;
      else missed.push(`${c.kind}: ${JSON.stringify(c.text)} -> ${JSON.stringify(out)}`);
    }
    console.log(`redaction sample, caught / cases: ${Object.entries(caught).map(([k, [a, n]]) => `${k} ${a}/${n}`).join(', ')}`);
    expect(missed).toEqual([]);
    // A number without a country code is read in the given region's formats.
    expect(redact('ring 020 7946 0958', undefined, 'GB')).toBe('ring [PHONE]');
  });

  it('drops empty and duplicate records, filters by length, redacts personal data', async () => {
    const rows = [{ text: 'hello' }, { text: '' }, { text: 'hello' }, { text: 'the cat '.repeat(20) }, { text: 'mail bob@example.com or call +1 415-555-0132, card 4111 1111 1111 1111' }];
    const d = await loadDataset(rows, tok, { dedupe: true, maxTokens: 60, redact: true, shuffle: false });
    expect(d.stats.skipped).toMatchObject({ empty: 1, duplicate: 1, tooLong: 1 });
    const texts = (await all(d.train.examples())).map((e) => tok.decode([...e.inputIds].slice(0, -1)));
    expect(texts.length).toBe(2);
    expect(redact('mail bob@example.com or call +1 415-555-0132, card 4111 1111 1111 1111')).toBe('mail [EMAIL] or call [PHONE], card [CARD]');
    expect(redact('order 1234 5678 9012 3456 on 2024-01-05')).toBe('order 1234 5678 9012 3456 on 2024-01-05'); // fails Luhn; a date
    expect(d.stats.redacted).toEqual({ emails: 1, phones: 1, cards: 1 });
  });
});

describe('splits', () => {
  const rows = Array.from({ length: 50 }, (_, i) => ({ text: `the cat ${i}` }));
  const texts = async (s: { examples(e?: number): AsyncIterable<Example> } | null, epoch = 0) => (await all(s!.examples(epoch))).map((e) => tok.decode([...e.inputIds]));

  it('are seeded, disjoint, complete, by fraction or count', async () => {
    const a = await loadDataset(rows, tok, { validation: 0.2, test: 5, seed: 1 } as never).catch((e) => e);
    expect(String(a)).toMatch(/both as fractions or both as counts/);
    const d1 = await loadDataset(rows, tok, { validation: 0.2, test: 0.1, seed: 1 });
    const d2 = await loadDataset(rows, tok, { validation: 0.2, test: 0.1, seed: 1 });
    const d3 = await loadDataset(rows, tok, { validation: 10, test: 5, seed: 2 });
    expect(d1.stats.examples).toEqual({ train: 35, validation: 10, test: 5 });
    expect(d3.stats.examples).toEqual({ train: 35, validation: 10, test: 5 });
    const [t1, v1, s1] = [await texts(d1.train), await texts(d1.validation), await texts(d1.test)];
    expect(await texts(d2.validation)).toEqual(v1);
    expect(await texts(d3.validation)).not.toEqual(v1);
    expect(new Set([...t1, ...v1, ...s1]).size).toBe(50);
    // Training order: a seeded shuffle per epoch.
    expect(await texts(d2.train, 0)).toEqual(t1);
    expect(await texts(d1.train, 1)).not.toEqual(t1);
    expect([...(await texts(d1.train, 1))].sort()).toEqual([...t1].sort());
  });

  it('streaming: re-reads the source each pass, splits by a seeded hash, same batches every pass', async () => {
    const p = file('stream.jsonl', rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const d = await loadDataset(p, tok, { streaming: true, validation: 0.2, seed: 3, shuffleBuffer: 8 });
    expect(d.train.size).toBeNull();
    const t = await texts(d.train), v = await texts(d.validation);
    expect(t.length + v.length).toBe(50);
    expect(new Set([...t, ...v]).size).toBe(50);
    expect(await texts(d.train)).toEqual(t);
    expect(d.train.size).toBe(t.length);
    expect(await texts(d.train, 1)).not.toEqual(t);
  });
});

describe('batches', () => {
  const ex = (n: number, base: number): Example => ({ inputIds: Int32Array.from({ length: n }, (_, i) => base + i), labels: Int32Array.from({ length: n }, (_, i) => base + i), where: '' });
  const examples = [ex(3, 10), ex(5, 20), ex(2, 30), ex(6, 40), ex(4, 50)];
  async function* source(list = examples) {
    yield* list;
  }

  it('pad rows to the longest in the batch with -100 labels', async () => {
    const out = [];
    for await (const b of batches(source(), { batchSize: 2, maxLength: 100, padId: 0 })) out.push(b);
    expect(out.map((b) => b.inputIds[0]!.length)).toEqual([5, 6, 4]);
    expect(out[0]!.labels[0]).toEqual([10, 11, 12, -100, -100]);
    expect(out[0]!.targets).toBe(2 + 4);
    expect(out.map((b) => b.position)).toEqual([2, 4, 5]);
  });

  it('pack examples into rows with restarting positions, never splitting one', async () => {
    const out = [];
    for await (const b of batches(source(), { batchSize: 2, maxLength: 8, packing: true, padId: 0 })) out.push(b);
    // Rows: [3+5], [2+6], [4 + pad]
    expect(out[0]!.inputIds).toEqual([[10, 11, 12, 20, 21, 22, 23, 24], [30, 31, 40, 41, 42, 43, 44, 45]]);
    expect(out[0]!.positionIds).toEqual([[0, 1, 2, 0, 1, 2, 3, 4], [0, 1, 0, 1, 2, 3, 4, 5]]);
    expect(out[1]!.positionIds).toEqual([[0, 1, 2, 3, 4, 5, 6, 7]]);
    expect(out[1]!.labels).toEqual([[50, 51, 52, 53, -100, -100, -100, -100]]);
    expect(out[0]!.targets).toBe(2 + 4 + 1 + 5);
    // Resuming at a batch's position gives the same later batches.
    const resumed = [];
    for await (const b of batches(source(), { batchSize: 2, maxLength: 8, packing: true, padId: 0 }, out[0]!.position)) resumed.push(b);
    expect(resumed).toEqual(out.slice(1));
  });
});

describe('larger than memory', () => {
  it('streams a JSONL and a CSV file several times the size of the JS heap it runs in', async () => {
    const { execFileSync } = await import('node:child_process');
    const { createWriteStream } = await import('node:fs');
    const row = { prompt: 'the cat sat on the mat '.repeat(10), completion: 'and the dog ran '.repeat(10) };
    const write = async (name: string, header: string, line: string, bytes: number) => {
      const p = join(work, name);
      const out = createWriteStream(p);
      out.write(header);
      const chunk = line.repeat(Math.ceil(1e6 / line.length));
      for (let written = 0; written < bytes; written += chunk.length) if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
      await new Promise((r) => out.end(r));
      return p;
    };
    const jsonl = await write('big.jsonl', '', JSON.stringify(row) + '\n', 96e6);
    const csv = await write('big.csv', 'prompt,completion\n', `${row.prompt},${row.completion}\n`, 96e6);
    const script = `import { readRecords } from ${JSON.stringify(join(fileURLToPath(new URL('..', import.meta.url)), 'dist/lib/index.js'))};
      for (const f of process.argv.slice(1)) { let n = 0, chars = 0; for await (const r of readRecords(f)) { n++; chars += r.row.completion.length; } console.log(n, chars); }`;
    const out = execFileSync(process.execPath, ['--max-old-space-size=24', '--input-type=module', '-e', script, jsonl, csv], { encoding: 'utf8' });
    const [a, b] = out.trim().split('\n').map((l) => l.split(' ').map(Number));
    expect(a![0]).toBeGreaterThan(200_000);
    expect(b![0]).toBeGreaterThan(200_000); // 96 MB each through a 24 MB heap: nothing is kept
    expect(a![1]).toBe(a![0]! * row.completion.length);
    expect(b![1]).toBe(b![0]! * row.completion.length);
  }, 120_000);
});
