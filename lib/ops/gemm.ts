// fp32 matrix multiply: C = alpha * op(A) * op(B) + beta * C, on native threads.
// The three products of a linear layer y = x·Wᵀ are named helpers below.
import { z } from 'zod';
import type { GemmOptions } from '../option-types.js';
import { awaitNative, TunekitError } from '../errors.js';
import { native } from '../native.js';
import { Tensor } from '../tensor.js';
import { Weights } from '../weights.js';
import { parseOptions, type Same } from '../validate.js';

export const GemmOptionsSchema = z
  .object({
    transposeA: z.boolean().optional().describe('Use Aᵀ (A stored as k x m). Default false'),
    transposeB: z.boolean().optional().describe('Use Bᵀ (B stored as n x k). Default false'),
    bf16: z.boolean().optional().describe('Round both operands to bf16 (round-to-nearest-even) and accumulate in fp32. Default false'),
    alpha: z.number().finite().optional().describe('Scale of the product (default 1)'),
    beta: z.number().finite().optional().describe('Scale of the existing C when `out` is given (default 0: C is overwritten)'),
    out: z.custom<Tensor<'f32'>>((v) => v instanceof Tensor, 'Tensor').meta({ tsType: "Tensor<'f32'>" }).optional().describe('Write into this m x n f32 tensor instead of a new one (default: a new tensor)'),
    reference: z.boolean().optional().describe('Use the plain fp64-accumulating reference instead of the fast kernel. Default false'),
    repeat: z.number().int().min(1).max(1_000_000).optional().describe('Run the product this many times (benchmarks). Default 1'),
    prepacked: z.boolean().optional().describe('bf16: pack B into the kernel\'s bf16 panels once, before the product(s), as a model does with its frozen weights. Default false'),
    prepackedA: z.boolean().optional().describe('bf16 with prepacked: pack A once too, as a layer does for products that share their input. Default false'),
  })
  .strict();
export type { GemmOptions };
// The schema accepts exactly the documented type (a compile-time check).
const schemaMatchesType: Same<z.input<typeof GemmOptionsSchema>, GemmOptions> = true;
void schemaMatchesType;

function matrix(t: unknown, name: string): Tensor<'f32'> {
  if (!(t instanceof Tensor)) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a Tensor for ${name}`);
  if (t.dtype !== 'f32' || t.shape.length !== 2) {
    throw new TunekitError(
      'ERR_TUNEKIT_INVALID_ARGUMENT',
      `Expected a 2-D f32 tensor for ${name} but received ${t.dtype} [${t.shape.join(', ')}]`,
    );
  }
  return t as Tensor<'f32'>;
}

/** A B operand: an f32/bf16/f16 tensor or compact Weights. */
export type MatrixOperand = Tensor<'f32'> | Tensor<'bf16'> | Tensor<'f16'> | Weights;

function bOperand(b: unknown): { shape: readonly number[]; handle: Tensor['handle'] | Weights['handle'] } {
  if (b instanceof Weights) return b;
  if (b instanceof Tensor && b.shape.length === 2 && (b.dtype === 'f32' || b.dtype === 'bf16' || b.dtype === 'f16')) return b;
  const what = b instanceof Tensor ? `${b.dtype} [${b.shape.join(', ')}]` : typeof b;
  throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a 2-D f32, bf16 or f16 tensor or Weights for b but received ${what}`);
}

/**
 * C = alpha * op(A) * op(B) + beta * C; returns C (a new tensor unless `out` is given).
 * B may be compact Weights (bf16, f16, NF4, GGUF blocks), decoded inside the GEMM's packing step.
 */
export async function gemm(a: Tensor<'f32'>, b: MatrixOperand, options: GemmOptions = {}): Promise<Tensor<'f32'>> {
  const o = parseOptions(GemmOptionsSchema, options, 'gemm');
  const A = matrix(a, 'a'), B = bOperand(b);
  const [m, k] = o.transposeA ? [A.shape[1]!, A.shape[0]!] : [A.shape[0]!, A.shape[1]!];
  const [kb, n] = o.transposeB ? [B.shape[1]!, B.shape[0]!] : [B.shape[0]!, B.shape[1]!];
  if (k !== kb) {
    throw new TunekitError(
      'ERR_TUNEKIT_INVALID_ARGUMENT',
      `Expected inner dimensions to agree but op(a) is [${m}, ${k}] and op(b) is [${kb}, ${n}]`,
    );
  }
  const c = o.out ? matrix(o.out, 'out') : Tensor.zeros('f32', [m, n]);
  if (c.shape[0] !== m || c.shape[1] !== n) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected out of shape [${m}, ${n}] but received [${c.shape.join(', ')}]`);
  }
  await awaitNative(() =>
    native.gemm(A.handle, B.handle, c.handle, {
      transposeA: o.transposeA,
      transposeB: o.transposeB,
      bf16: o.bf16,
      alpha: o.alpha,
      beta: o.out ? o.beta : 0,
      reference: o.reference,
      repeat: o.repeat,
      prepacked: o.prepacked,
      prepackedA: o.prepackedA,
    }),
  );
  return c;
}

/** Forward of a linear layer: Y = X·Wᵀ, with X [tokens, in] and W [out, in]. */
export function linearForward(x: Tensor<'f32'>, w: MatrixOperand, options: Omit<GemmOptions, 'transposeA' | 'transposeB'> = {}) {
  return gemm(x, w, { ...options, transposeB: true });
}

/** Gradient w.r.t. the input: dX = dY·W, with dY [tokens, out] and W [out, in]. */
export function linearBackwardInput(dy: Tensor<'f32'>, w: MatrixOperand, options: Omit<GemmOptions, 'transposeA' | 'transposeB'> = {}) {
  return gemm(dy, w, options);
}

/** Gradient w.r.t. the weight: dW = dYᵀ·X, with dY [tokens, out] and X [tokens, in]. */
export function linearBackwardWeight(dy: Tensor<'f32'>, x: Tensor<'f32'>, options: Omit<GemmOptions, 'transposeA' | 'transposeB'> = {}) {
  return gemm(dy, x, { ...options, transposeA: true });
}
