// The fused LoRA linear layer (as PEFT's lora.Linear), with the frozen weight in any format:
//   y = x·Wᵀ + s · dropout(x)·Aᵀ·Bᵀ,  s = alpha / r  (or alpha / sqrt(r) with rsLoRA)
// A is [r, in] and B is [out, r], PEFT's shapes. W stays frozen: the backward returns dX, dA, dB.
import { z } from 'zod';
import type { LoraKernelOptions } from '../option-types.js';
import { awaitNative, TunekitError } from '../errors.js';
import { native } from '../native.js';
import { Tensor } from '../tensor.js';
import { Weights } from '../weights.js';
import type { MatrixOperand } from './gemm.js';
import { parseOptions, type Same } from '../validate.js';

export interface LoraAdapter {
  /** lora_A: [r, in]. */
  a: Tensor<'f32'>;
  /** lora_B: [out, r]. */
  b: Tensor<'f32'>;
  alpha: number;
  /** rsLoRA: scale alpha / sqrt(r) instead of alpha / r. */
  rslora?: boolean;
}

/** PEFT's scaling: alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScale(alpha: number, r: number, rslora = false): number {
  return rslora ? alpha / Math.sqrt(r) : alpha / r;
}

const f32Tensor = () => z.custom<Tensor<'f32'>>((v) => v instanceof Tensor && v.dtype === 'f32', 'f32 Tensor').meta({ tsType: "Tensor<'f32'>" }).optional();
export const LoraOptionsSchema = z
  .object({
    out: z
      .object({
        y: f32Tensor().describe('Forward: the output Y [tokens, out] (default: a new tensor)'),
        t: f32Tensor().describe('Forward: the adapter\'s intermediate T = X·Aᵀ [tokens, r], which the backward takes (default: a new tensor)'),
        dx: f32Tensor().describe('Backward: the input gradient dX [tokens, in] (default: a new tensor)'),
        da: f32Tensor().describe('Backward: the gradient of A [r, in] (default: a new tensor)'),
        db: f32Tensor().describe('Backward: the gradient of B [out, r] (default: a new tensor)'),
      })
      .strict()
      .optional()
      .describe('Write results into these tensors instead of new ones, to reuse them across steps (default: new tensors)'),
    dropout: z.number().min(0).lt(1).optional().describe('LoRA dropout probability on the adapter input (default 0)'),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('Seed of the dropout mask; pass the same to the backward (default 0)'),
    bf16: z.boolean().optional().describe('Run the products in bf16 with fp32 accumulation. Default false'),
    inputGrad: z.boolean().optional().describe('Backward: also compute dX (default true)'),
  })
  .strict();
export type { LoraKernelOptions };
// The schema accepts exactly the documented type (a compile-time check).
const schemaMatchesType: Same<z.input<typeof LoraOptionsSchema>, LoraKernelOptions> = true;
void schemaMatchesType;

/** What the forward keeps for the backward: T = dropout(x)·Aᵀ, [tokens, r]. */
export interface LoraSaved {
  t: Tensor<'f32'>;
}

function checkAdapter(adapter: LoraAdapter): number {
  const { a, b, alpha } = adapter;
  if (!(a instanceof Tensor) || !(b instanceof Tensor) || a.dtype !== 'f32' || b.dtype !== 'f32' || a.shape.length !== 2 || b.shape.length !== 2) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected f32 2-D tensors for lora A [r, in] and lora B [out, r]');
  }
  if (!Number.isFinite(alpha)) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected finite number for alpha but received ${alpha}`);
  return loraScale(alpha, a.shape[0]!, adapter.rslora);
}

function wHandle(w: MatrixOperand) {
  if (w instanceof Weights || w instanceof Tensor) return w.handle;
  throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected a Tensor or Weights for w');
}

/** y = x·Wᵀ + s · dropout(x)·Aᵀ·Bᵀ; returns y [tokens, out] and what the backward needs. */
export async function loraLinearForward(
  x: Tensor<'f32'>, w: MatrixOperand, adapter: LoraAdapter, options: LoraKernelOptions = {},
): Promise<{ y: Tensor<'f32'>; saved: LoraSaved }> {
  const o = parseOptions(LoraOptionsSchema, options, 'loraLinearForward');
  const scale = checkAdapter(adapter);
  const m = x.shape[0]!, out = w.shape[0]!, r = adapter.a.shape[0]!;
  const y = o.out?.y ?? Tensor.zeros('f32', [m, out]), t = o.out?.t ?? Tensor.zeros('f32', [m, r]);
  await awaitNative(() =>
    native.loraLinearForward(x.handle, wHandle(w), adapter.a.handle, adapter.b.handle, y.handle, t.handle, {
      scale, dropout: o.dropout, seed: o.seed, bf16: o.bf16,
    }),
  );
  return { y, saved: { t } };
}

/** Gradients of the fused layer with W frozen: dX (unless inputGrad is false), dA and dB. */
export async function loraLinearBackward(
  dy: Tensor<'f32'>, x: Tensor<'f32'>, w: MatrixOperand, adapter: LoraAdapter, saved: LoraSaved, options: LoraKernelOptions = {},
): Promise<{ dx: Tensor<'f32'> | null; da: Tensor<'f32'>; db: Tensor<'f32'> }> {
  const o = parseOptions(LoraOptionsSchema, options, 'loraLinearBackward');
  const scale = checkAdapter(adapter);
  const dx = o.inputGrad === false ? null : (o.out?.dx ?? Tensor.zeros('f32', [x.shape[0]!, x.shape[1]!]));
  const da = o.out?.da ?? Tensor.zeros('f32', [...adapter.a.shape]), db = o.out?.db ?? Tensor.zeros('f32', [...adapter.b.shape]);
  await awaitNative(() =>
    native.loraLinearBackward(dy.handle, x.handle, wHandle(w), adapter.a.handle, adapter.b.handle, saved.t.handle, dx?.handle ?? null, da.handle, db.handle, {
      scale, dropout: o.dropout, seed: o.seed, bf16: o.bf16,
    }),
  );
  return { dx, da, db };
}
