// Tensor: a dense row-major array in native (64-byte aligned) memory.
// `data` is a typed-array view straight onto that memory: writing to it writes the tensor.
import { callNative, TunekitError } from './errors.js';
import { native, type NativeDtype as Dtype, type NativeTensor } from './native.js';

export type { Dtype };

/** Bytes per element. */
export const DTYPE_SIZE: Record<Dtype, number> = { f32: 4, bf16: 2, f16: 2, i32: 4, u8: 1 };

export type TypedArrayFor<D extends Dtype> = D extends 'f32'
  ? Float32Array
  : D extends 'i32'
    ? Int32Array
    : D extends 'u8'
      ? Uint8Array
      : Uint16Array; // bf16, f16: raw 16-bit patterns

function view(dtype: Dtype, buffer: ArrayBuffer): Float32Array | Int32Array | Uint8Array | Uint16Array {
  switch (dtype) {
    case 'f32':
      return new Float32Array(buffer);
    case 'i32':
      return new Int32Array(buffer);
    case 'u8':
      return new Uint8Array(buffer);
    default:
      return new Uint16Array(buffer);
  }
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export class Tensor<D extends Dtype = Dtype> {
  /** @internal The native handle, for passing to the addon. */
  readonly handle: NativeTensor;
  readonly dtype: D;
  readonly shape: readonly number[];

  private view?: TypedArrayFor<D>;

  /** @internal Wraps a native tensor handle. */
  constructor(handle: NativeTensor) {
    this.handle = handle;
    this.dtype = handle.dtype as D;
    this.shape = Object.freeze(handle.shape);
  }

  /** A zero-filled tensor. */
  static zeros<D extends Dtype>(dtype: D, shape: readonly number[]): Tensor<D> {
    return new Tensor<D>(callNative(() => new native.Tensor(dtype, [...shape])));
  }

  /** A tensor holding a copy of `values`; its length must equal the shape's element count. */
  static from<D extends Dtype>(dtype: D, shape: readonly number[], values: ArrayLike<number>): Tensor<D> {
    const t = Tensor.zeros(dtype, shape);
    if (values.length !== t.numel) {
      throw new TunekitError(
        'ERR_TUNEKIT_INVALID_ARGUMENT',
        `Expected ${t.numel} values for shape [${shape.join(', ')}] but received ${values.length}`,
      );
    }
    (t.data as { set(v: ArrayLike<number>): void }).set(values);
    return t;
  }

  get numel(): number {
    return numel(this.shape);
  }

  get byteLength(): number {
    return this.handle.byteLength;
  }

  /**
   * Frees the native memory now rather than at garbage collection (whose finalizers run only when
   * the event loop turns — a synchronous loop allocating big tensors should dispose them). Views
   * from `data`/`bytes` become detached (length 0); passing the tensor to an op is then an error.
   */
  dispose(): void {
    this.view = undefined;
    callNative(() => this.handle.dispose());
  }

  /** A view of the native memory as raw bytes. */
  get bytes(): Uint8Array {
    return new Uint8Array(this.handle.buffer);
  }

  /** A typed-array view of the native memory (bf16/f16 as raw Uint16 bit patterns); made once. */
  get data(): TypedArrayFor<D> {
    return (this.view ??= view(this.dtype, this.handle.buffer) as TypedArrayFor<D>);
  }
}
