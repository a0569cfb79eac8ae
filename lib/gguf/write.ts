// Writing GGUF v3 files with f32 tensors (or tensors already in a GGUF block format) and typed
// metadata (enough for LoRA adapters, and the benches' quantized models), through the same
// temp-file + rename as safetensors, so a failed write leaves nothing half-done.
import { writeAtomically } from '../safetensors/write.js';
import type { Tensor } from '../tensor.js';
import { GGUF_MAGIC, GgufValueType } from './format.js';

/** A metadata value with its GGUF type (numbers are ambiguous otherwise). */
export type GgufTypedValue =
  | { type: 'string'; value: string }
  | { type: 'f32'; value: number }
  | { type: 'u32'; value: number }
  | { type: 'bool'; value: boolean };

/** A tensor already in a GGUF format: its type id (format.ts), row-major shape and stored bytes. */
export interface GgufBlocks {
  ggufType: number;
  shape: readonly number[];
  data: Uint8Array;
}

const ALIGNMENT = 32;

class Bytes {
  private parts: Buffer[] = [];
  length = 0;
  push(b: Buffer) {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  concat() {
    return Buffer.concat(this.parts);
  }
}

/** Writes tensors (f32 or GGUF blocks, row-major shapes as tunekit uses them) and metadata to a GGUF file. */
export async function writeGguf(file: string, metadata: Record<string, GgufTypedValue>, tensors: Record<string, Tensor<'f32'> | GgufBlocks>): Promise<void> {
  const h = new Bytes();
  const names = Object.keys(tensors);
  h.u32(GGUF_MAGIC);
  h.u32(3);
  h.u64(names.length);
  h.u64(Object.keys(metadata).length);
  for (const [key, v] of Object.entries(metadata)) {
    h.str(key);
    if (v.type === 'string') {
      h.u32(GgufValueType.STRING);
      h.str(v.value);
    } else if (v.type === 'f32') {
      h.u32(GgufValueType.FLOAT32);
      const b = Buffer.alloc(4);
      b.writeFloatLE(v.value);
      h.push(b);
    } else if (v.type === 'u32') {
      h.u32(GgufValueType.UINT32);
      h.u32(v.value);
    } else {
      h.u32(GgufValueType.BOOL);
      h.push(Buffer.from([v.value ? 1 : 0]));
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const name of names) {
    const t = tensors[name]!;
    h.str(name);
    h.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) h.u64(d); // GGUF lists ne[0] (the contiguous dimension) first
    h.u32('ggufType' in t ? t.ggufType : 0); // 0: F32
    h.u64(offset);
    offsets.push(offset);
    offset += Math.ceil(t.data.byteLength / ALIGNMENT) * ALIGNMENT;
  }
  const header = h.concat();
  const dataStart = Math.ceil(header.length / ALIGNMENT) * ALIGNMENT;
  await writeAtomically(file, async (fh) => {
    await fh.write(header, 0, header.length, 0);
    for (let i = 0; i < names.length; i++) {
      const t = tensors[names[i]!]!;
      await fh.write(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), 0, t.data.byteLength, dataStart + offsets[i]!);
    }
    const end = dataStart + offset;
    await fh.truncate(end);
  });
}
