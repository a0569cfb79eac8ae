// Phi-3's fused matrices (qkv_proj / attn_qkv, gate_up_proj / the phi3 GGUF's ffn_up) split into
// the row blocks the engine runs as its own projections (q, k, v; gate, up). A row of any stored
// format is a contiguous run of its bytes (GGUF blocks never straddle rows), so a block of rows is a
// byte range: quantized matrices stay quantized. LoRA still adapts each fused matrix whole
// (model/llama_family.cc), and a merged export joins the blocks back (export/merge.ts).
import { TunekitError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { Weights } from '../weights.js';

/** Consecutive row blocks of a [rows, cols] matrix, each a copy in the same format. */
export function splitRows(t: Tensor | Weights, rows: number[], what: string): (Tensor | Weights)[] {
  const [total, cols] = t.shape as [number, number];
  if (rows.reduce((a, b) => a + b, 0) !== total) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${what} has ${total} rows; expected ${rows.join(' + ')}`);
  }
  const bytes = t instanceof Weights ? t.parts().data : t;
  const raw = new Uint8Array(bytes.data.buffer, bytes.data.byteOffset, bytes.byteLength), perRow = raw.length / total;
  let r0 = 0;
  return rows.map((n) => {
    const slice = raw.subarray(r0 * perRow, (r0 + n) * perRow);
    r0 += n;
    if (t instanceof Weights) return Weights.fromParts({ format: t.format, shape: [n, cols], data: Tensor.from('u8', [slice.length], slice) });
    const out = Tensor.zeros(t.dtype, [n, cols]);
    new Uint8Array(out.data.buffer, out.data.byteOffset, out.byteLength).set(slice);
    return out;
  });
}

/** The engine's names of a fused matrix's blocks and their row counts (q, k, v; gate, up). */
export function fusedBlocks(kind: 'qkv' | 'gate_up', c: { heads: number; kvHeads: number; headDim: number; ffn: number }): [string, number][] {
  return kind === 'qkv'
    ? [['attn_q', c.heads * c.headDim], ['attn_k', c.kvHeads * c.headDim], ['attn_v', c.kvHeads * c.headDim]]
    : [['ffn_gate', c.ffn], ['ffn_up', c.ffn]];
}
