// A seeded random generator that gives the same numbers on every machine and Node version
// (32-bit integer arithmetic only): sfc32 seeded through splitmix32. Used for splits, shuffles and
// augmentation; its state is four integers, so a checkpoint can store it.

export class Random {
  private s: Uint32Array;
  constructor(seed: number, stream = 0) {
    let x = (seed >>> 0) ^ Math.imul(stream >>> 0, 0x9e3779b9) ^ (Math.floor(seed / 2 ** 32) >>> 0);
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s = Uint32Array.of(next(), next(), next(), next());
    for (let i = 0; i < 12; i++) this.uint32();
  }
  /** Uniform in [0, 2^32). */
  uint32(): number {
    const s = this.s;
    const t = (((s[0]! + s[1]!) >>> 0) + s[3]!) >>> 0;
    s[3] = (s[3]! + 1) >>> 0;
    s[0] = s[1]! ^ (s[1]! >>> 9);
    s[1] = (s[2]! + (s[2]! << 3)) >>> 0;
    s[2] = ((s[2]! << 21) | (s[2]! >>> 11)) >>> 0;
    s[2] = (s[2]! + t) >>> 0;
    return t;
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.uint32() / 2 ** 32;
  }
  /** Uniform integer in [0, n) (rejection sampling, no modulo bias). */
  below(n: number): number {
    if (n <= 1) return 0;
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const u = this.uint32();
      if (u < limit) return u % n;
    }
  }
  /** Fisher–Yates, in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
  get state(): number[] {
    return [...this.s];
  }
  set state(v: number[]) {
    this.s = Uint32Array.from(v);
  }
}

/** A uniform number in [0, 1) from (seed, index) alone: how streaming splits assign a record. */
export function hashUnit(seed: number, index: number): number {
  let z = Math.imul((seed >>> 0) ^ 0x27d4eb2f, 0x165667b1) ^ Math.imul(index >>> 0, 0x9e3779b9) ^ (Math.floor(index / 2 ** 32) >>> 0);
  z = Math.imul(z ^ (z >>> 15), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32;
}
