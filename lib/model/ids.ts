// Token ids, labels and positions from JS numbers into i32 tensors, checked.
import { TunekitError } from '../errors.js';
import { Tensor } from '../tensor.js';

/**
 * An i32 tensor of ids, labels or positions. Every value must be an integer that fits 32 bits: a
 * typed-array conversion would turn NaN, 1.5, 2^32 + 1, 'a' or Infinity into 0, 1 or 1 without a
 * word (the native side then checks each id's range against the vocabulary).
 */
export function i32Tensor(shape: number[], values: ArrayLike<unknown>, what: (i: number) => string): Tensor<'i32'> {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
      throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected ${what(i)} to be an integer (a token id, label or position) but received ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
    }
  }
  return Tensor.from('i32', shape, values as ArrayLike<number>);
}
