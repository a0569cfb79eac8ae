// Weights: a frozen weight matrix kept in a compact format — bf16, f16, NF4 (bitsandbytes layout)
// or a GGUF block format (Q4_0, Q4_1, Q8_0, and the K-quants Q2_K..Q6_K, Q8_K and IQ4_NL / IQ4_XS read from files) —
// that GEMMs decode panel by panel.
//
// NaN policy: quantizing weights that hold NaN or Inf is an error naming the element; GEMMs do not
// scan their inputs (that would cost a pass per call), so NaN/Inf in activations propagate to the
// outputs as IEEE arithmetic says, and the training loop checks the loss.
import { z } from 'zod';
import type { QuantizeOptions } from './option-types.js';
import { awaitNative, callNative, TunekitError } from './errors.js';
import { native, type NativeWeights, type WeightFormat } from './native.js';
import { Tensor } from './tensor.js';
import { parseOptions, type Same } from './validate.js';

export type { WeightFormat };

const FORMATS = ['f32', 'bf16', 'f16', 'nf4', 'q4_0', 'q4_1', 'q8_0'] as const;

export const QuantizeOptionsSchema = z
  .object({
    // K-quants are only read (from GGUF files, through fromParts), never made.
    format: z.enum(FORMATS).describe('Storage format: f32, bf16, f16, nf4 (bitsandbytes), q4_0, q4_1, q8_0 (GGUF)'),
    blocksize: z.number().int().min(32).max(4096).optional().describe('NF4 block size, a power of two in 32..4096 (default 64)'),
    doubleQuant: z.boolean().optional().describe('NF4: quantize the absmax statistics too (bitsandbytes compress_statistics). Default false'),
  })
  .strict();
export type { QuantizeOptions };
// The schema accepts exactly the documented type (a compile-time check).
const schemaMatchesType: Same<z.input<typeof QuantizeOptionsSchema>, QuantizeOptions> = true;
void schemaMatchesType;
/** The formats weights can be quantized to (every WeightFormat but the K-quants, which are only read). */
export type QuantizeFormat = (typeof FORMATS)[number];

export interface WeightParts {
  /** Elements (dense formats), packed NF4 codes (u8) or GGUF blocks (u8). */
  data: Tensor;
  /** NF4: fp32 absmax per block (recovered from the double quantization when there is one). */
  absmax?: Tensor;
  /** NF4 double quantization: u8 code per block, fp32 absmax per 256 blocks, and the offset. */
  qabsmax?: Tensor;
  absmax2?: Tensor;
  offset?: number;
}

export class Weights {
  /** @internal */
  readonly handle: NativeWeights;
  readonly format: WeightFormat;
  readonly shape: readonly [number, number];
  readonly blocksize: number;
  readonly doubleQuant: boolean;
  /** Bytes held for the matrix and its statistics. */
  readonly storedBytes: number;

  /** @internal */
  constructor(handle: NativeWeights) {
    this.handle = handle;
    const info = handle.info();
    this.format = info.format;
    this.shape = Object.freeze([info.shape[0], info.shape[1]]) as readonly [number, number];
    this.blocksize = info.blocksize;
    this.doubleQuant = info.doubleQuant;
    this.storedBytes = info.storedBytes;
  }

  /** Builds weights from stored parts, e.g. a bitsandbytes or GGUF checkpoint; checks every size. */
  static fromParts(spec: { format: WeightFormat; shape: readonly [number, number]; blocksize?: number; doubleQuant?: boolean } & WeightParts): Weights {
    const handle = callNative(
      () =>
        new native.Weights({
          format: spec.format,
          shape: [spec.shape[0], spec.shape[1]],
          blocksize: spec.blocksize,
          doubleQuant: spec.doubleQuant,
          offset: spec.offset,
          data: spec.data.handle,
          absmax: spec.absmax?.handle,
          qabsmax: spec.qabsmax?.handle,
          absmax2: spec.absmax2?.handle,
        }),
    );
    return new Weights(handle);
  }

  /** The stored parts, sharing memory with these weights. */
  parts(): WeightParts {
    const p = callNative(() => this.handle.parts());
    return {
      data: new Tensor(p.data),
      absmax: p.absmax && new Tensor(p.absmax),
      qabsmax: p.qabsmax && new Tensor(p.qabsmax),
      absmax2: p.absmax2 && new Tensor(p.absmax2),
      offset: p.offset,
    };
  }

  /** The whole matrix in fp32, into `out` if given (kernels never need this; export and inspection do). */
  async dequantize(out?: Tensor<'f32'>): Promise<Tensor<'f32'>> {
    const handle = await awaitNative(() => this.handle.dequantize(out?.handle));
    return out ?? (new Tensor(handle) as Tensor<'f32'>);
  }
}

/** Quantizes (or converts) a 2-D f32 tensor [rows, cols] into `format`. */
export async function quantizeWeights(weights: Tensor<'f32'>, options: QuantizeOptions): Promise<Weights> {
  const o = parseOptions(QuantizeOptionsSchema, options, 'quantizeWeights');
  if (!(weights instanceof Tensor) || weights.dtype !== 'f32' || weights.shape.length !== 2) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'Expected a 2-D f32 tensor to quantize');
  }
  return new Weights(await awaitNative(() => native.quantizeWeights(weights.handle, o)));
}
