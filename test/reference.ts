// fp64 GEMM reference and the element-wise error check shared by kernel tests.

const U = 2 ** -24; // fp32 unit roundoff

export interface Ref {
  value: Float64Array;
  magnitude: Float64Array;
}

/** fp64 reference of C = alpha*op(A)op(B) + beta*C0, plus alpha*sum|a||b| + |beta c0| per element for the bound. */
export function gemmReference(
  a: ArrayLike<number>, b: ArrayLike<number>, c0: ArrayLike<number> | null,
  m: number, n: number, k: number, ta: boolean, tb: boolean, alpha = 1, beta = 0,
): Ref {
  const value = new Float64Array(m * n), magnitude = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0, mag = 0;
      for (let p = 0; p < k; p++) {
        const x = ta ? a[p * m + i]! : a[i * k + p]!;
        const y = tb ? b[j * k + p]! : b[p * n + j]!;
        s += x * y;
        mag += Math.abs(x * y);
      }
      const prev = c0 ? c0[i * n + j]! : 0;
      value[i * n + j] = alpha * s + beta * prev;
      magnitude[i * n + j] = Math.abs(alpha) * mag + Math.abs(beta * prev);
    }
  return { value, magnitude };
}

/** Worst |c - ref| / (2 (k + 2) u * magnitude) over all elements: <= 1 passes the classic dot-product bound. */
export function worstBoundRatio(c: ArrayLike<number>, ref: Ref, k: number): { ratio: number; at: number } {
  let ratio = 0, at = -1;
  for (let i = 0; i < c.length; i++) {
    const bound = 2 * (k + 2) * U * ref.magnitude[i]! + 1e-30;
    const r = Math.abs(c[i]! - ref.value[i]!) / bound;
    if (!(r <= ratio)) {
      ratio = r;
      at = i;
    }
  }
  return { ratio, at };
}

/** fp32 -> bf16 -> fp32 with round-to-nearest-even, computed independently of the library. */
export function roundBf16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  const v = u[0]!;
  u[0] = ((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) << 16;
  return f[0]!;
}

/**
 * A gradient of the summed loss (what trainStep accumulates) as the gradient of the mean over
 * `tokens` labelled tokens (what PyTorch's loss.backward() gives for a mean loss).
 */
export function perToken(g: { data: ArrayLike<number> } | ArrayLike<number>, tokens: number): Float64Array {
  const data = 'data' in g ? g.data : g;
  return Float64Array.from(data as ArrayLike<number>, (x) => x / tokens);
}

/** Max |a - b| over max |b|: a scale-free error for whole tensors. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0, scale = 1e-30;
  for (let i = 0; i < b.length; i++) {
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return worst / scale;
}
