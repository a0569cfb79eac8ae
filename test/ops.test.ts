// The model engine's ops — RMSNorm, RoPE, causal GQA attention, SwiGLU, cross-entropy, AdamW —
// forward against fp64 references written here, backward against central finite differences of
// those references (so neither side shares code with the C++), AdamW against torch.optim.AdamW.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor, runtimeInfo, setRuntimeOptions, type Isa } from '../lib/index.js';
import { native } from '../lib/native.js';
import { randomValues } from './helpers.js';

const f32 = (shape: number[], v: ArrayLike<number>) => Tensor.from('f32', shape, v);
const run = (name: string, ts: Tensor[], o: Record<string, number | boolean>) => native.runOp(name, ts.map((t) => t.handle), o);

/** Central differences of a scalar fp64 function at x (all coordinates). */
function numericGrad(f: (x: Float64Array) => number, x: ArrayLike<number>, eps = 1e-6): Float64Array {
  const v = Float64Array.from(x), g = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i]!;
    v[i] = keep + eps;
    const up = f(v);
    v[i] = keep - eps;
    const down = f(v);
    v[i] = keep;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

function expectNear(ours: ArrayLike<number>, ref: ArrayLike<number>, tol: number, label: string) {
  let worst = 0, scale = 1e-12;
  for (let i = 0; i < ref.length; i++) {
    worst = Math.max(worst, Math.abs(ours[i]! - ref[i]!));
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  expect(worst / scale, label).toBeLessThan(tol);
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!; return s; };

describe('RMSNorm', () => {
  const [rows, dim, eps] = [5, 24, 1e-5];
  const ref = (x: ArrayLike<number>, w: ArrayLike<number>) => {
    const y = new Float64Array(rows * dim);
    for (let r = 0; r < rows; r++) {
      let ss = 0;
      for (let i = 0; i < dim; i++) ss += x[r * dim + i]! ** 2;
      const inv = 1 / Math.sqrt(ss / dim + eps);
      for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i]! * inv * w[i]!;
    }
    return y;
  };
  it('forward and backward match fp64 and finite differences', async () => {
    const x = randomValues(rows * dim, 1), w = randomValues(dim, 2), g = randomValues(rows * dim, 3);
    const y = Tensor.zeros('f32', [rows, dim]);
    await run('rmsnorm_forward', [f32([rows, dim], x), f32([dim], w), y], { rows, dim, eps });
    expectNear(y.data, ref(x, w), 1e-6, 'y');
    const dx = Tensor.zeros('f32', [rows, dim]), dw = Tensor.zeros('f32', [dim]);
    await run('rmsnorm_backward', [f32([rows, dim], x), f32([dim], w), f32([rows, dim], g), dx, dw], { rows, dim, eps });
    expectNear(dx.data, numericGrad((xv) => dot(ref(xv, w), g), x), 1e-5, 'dx');
    expectNear(dw.data, numericGrad((wv) => dot(ref(x, wv), g), w), 1e-5, 'dw');
  });
  // The rows are compiled for each ISA (backend/cpu/rmsnorm.cc) with the same fp64 lanes: widths
  // with several 16-lane blocks and ragged tails, dw summed over rows split across two threads.
  const before = runtimeInfo();
  afterAll(() => setRuntimeOptions({ isa: before.isa, threads: before.threads }));
  it('gives the same bits on every ISA', async () => {
    const info = runtimeInfo(), order: Isa[] = ['scalar', 'avx2', 'avx512', 'avx512bf16', 'amx'];
    for (const d of [7, 24, 70, 576]) {
      const n = 9, x = randomValues(n * d, d), w = randomValues(d, d + 1), g = randomValues(n * d, d + 2);
      const outputs = [];
      for (const isa of order.slice(0, order.indexOf(info.detectedIsa) + 1)) {
        setRuntimeOptions({ isa, threads: 2 });
        const y = Tensor.zeros('f32', [n, d]), dx = Tensor.zeros('f32', [n, d]), dw = Tensor.zeros('f32', [d]);
        await run('rmsnorm_forward', [f32([n, d], x), f32([d], w), y], { rows: n, dim: d, eps });
        await run('rmsnorm_backward', [f32([n, d], x), f32([d], w), f32([n, d], g), dx, dw], { rows: n, dim: d, eps });
        outputs.push({ isa, bits: [y, dx, dw].map((t) => Array.from(new Uint32Array((t.data as Float32Array).buffer))) });
      }
      for (const o of outputs.slice(1)) expect(o.bits, `dim ${d}: ${o.isa} against ${outputs[0]!.isa}`).toEqual(outputs[0]!.bits);
    }
  });
});

describe('RoPE (interleaved)', () => {
  const [n, heads, hd, theta] = [6, 3, 8, 10000];
  const pos = Array.from({ length: n }, (_, i) => i * 3 + 1);
  const ref = (x: ArrayLike<number>) => {
    const y = Float64Array.from(x);
    for (let t = 0; t < n; t++)
      for (let h = 0; h < heads; h++)
        for (let i = 0; i < hd / 2; i++) {
          const a = pos[t]! * Math.pow(theta, (-2 * i) / hd), o = (t * heads + h) * hd + 2 * i;
          const [u, v] = [x[o]!, x[o + 1]!];
          y[o] = u * Math.cos(a) - v * Math.sin(a);
          y[o + 1] = u * Math.sin(a) + v * Math.cos(a);
        }
    return y;
  };
  it('forward matches fp64 and backward is its transpose', async () => {
    const x = randomValues(n * heads * hd, 4), g = randomValues(n * heads * hd, 5);
    const t = f32([n * heads * hd], x);
    await run('rope_forward', [t, Tensor.from('i32', [n], pos)], { tokens: n, heads, headDim: hd, theta });
    expectNear(t.data, ref(x), 1e-5, 'rope');
    const dg = f32([n * heads * hd], g);
    await run('rope_backward', [dg, Tensor.from('i32', [n], pos)], { tokens: n, heads, headDim: hd, theta });
    expectNear(dg.data, numericGrad((xv) => dot(ref(xv), g), x), 1e-5, 'drope');
  });

  // Phi-4-mini's partial rotary: halves pairing over the first rotaryDim dimensions, frequencies
  // by 2i / rotaryDim, the rest of each head untouched.
  it('rotates only the first rotaryDim dimensions of each head (halves pairing), the rest passing through', async () => {
    const rot = 6, d = 8;
    const partial = (x: ArrayLike<number>) => {
      const y = Float64Array.from(x);
      for (let t = 0; t < n; t++)
        for (let h = 0; h < heads; h++)
          for (let i = 0; i < rot / 2; i++) {
            const a = pos[t]! * Math.pow(theta, (-2 * i) / rot), o = (t * heads + h) * d;
            const [u, v] = [x[o + i]!, x[o + i + rot / 2]!];
            y[o + i] = u * Math.cos(a) - v * Math.sin(a);
            y[o + i + rot / 2] = u * Math.sin(a) + v * Math.cos(a);
          }
      return y;
    };
    const x = randomValues(n * heads * d, 6), g = randomValues(n * heads * d, 7);
    const o = { tokens: n, heads, headDim: d, theta, interleaved: false, rotaryDim: rot };
    const t = f32([n * heads * d], x);
    await run('rope_forward', [t, Tensor.from('i32', [n], pos)], o);
    expectNear(t.data, partial(x), 1e-5, 'partial rope');
    const dg = f32([n * heads * d], g);
    await run('rope_backward', [dg, Tensor.from('i32', [n], pos)], o);
    expectNear(dg.data, numericGrad((xv) => dot(partial(xv), g), x), 1e-5, 'dpartial');
  });
});

describe('causal grouped-query attention', () => {
  // fp64 reference; window > 0 lets a query at t see keys t - window + 1 .. t only; softcap > 0
  // maps each score s to softcap·tanh(s / softcap) (Gemma 2).
  const reference = (n: number, hq: number, hkv: number, hd: number, window: number, softcap = 0) =>
    (q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) => {
      const out = new Float64Array(n * hq * hd), scale = 1 / Math.sqrt(hd);
      for (let h = 0; h < hq; h++) {
        const g = Math.floor(h / (hq / hkv));
        for (let t = 0; t < n; t++) {
          const first = window > 0 ? Math.max(0, t - window + 1) : 0, s = [];
          for (let j = first; j <= t; j++) {
            let d = 0;
            for (let i = 0; i < hd; i++) d += q[(t * hq + h) * hd + i]! * k[(j * hkv + g) * hd + i]!;
            s.push(softcap > 0 ? softcap * Math.tanh((d * scale) / softcap) : d * scale);
          }
          const m = Math.max(...s), e = s.map((x) => Math.exp(x - m)), z = e.reduce((a, b) => a + b, 0);
          for (let j = first; j <= t; j++)
            for (let i = 0; i < hd; i++) out[(t * hq + h) * hd + i] += (e[j - first]! / z) * v[(j * hkv + g) * hd + i]!;
        }
      }
      return out;
    };
  const run3 = async (n: number, hq: number, hkv: number, hd: number, window: number, seed: number, bf16 = false, softcap = 0) => {
    const q = randomValues(n * hq * hd, seed).map((x) => x * (softcap > 0 ? 4 : 1)), k = randomValues(n * hkv * hd, seed + 1), v = randomValues(n * hkv * hd, seed + 2);
    const g = randomValues(n * hq * hd, seed + 3);
    const out = Tensor.zeros('f32', [n * hq * hd]), lse = Tensor.zeros('f32', [n * hq]);
    const o = { tokens: n, qHeads: hq, kvHeads: hkv, headDim: hd, window, bf16, softcap };
    await run('attention_forward', [f32([q.length], q), f32([k.length], k), f32([v.length], v), out, lse], o);
    const dq = Tensor.zeros('f32', [q.length]), dk = Tensor.zeros('f32', [k.length]), dv = Tensor.zeros('f32', [v.length]);
    // The backward reads the forward's output and row statistics.
    await run('attention_backward', [f32([q.length], q), f32([k.length], k), f32([v.length], v), f32([g.length], g), dq, dk, dv, out, lse], o);
    return { q, k, v, g, out: out.data, dq: dq.data, dk: dk.data, dv: dv.data };
  };
  it('forward matches fp64; backward matches finite differences for q, k and v', async () => {
    const [n, hq, hkv, hd] = [7, 4, 2, 5];
    const ref = reference(n, hq, hkv, hd, 0);
    const { q, k, v, g, out, dq, dk, dv } = await run3(n, hq, hkv, hd, 0, 6);
    expectNear(out, ref(q, k, v), 1e-5, 'attention');
    expectNear(dq, numericGrad((x) => dot(ref(x, k, v), g), q), 1e-4, 'dq');
    expectNear(dk, numericGrad((x) => dot(ref(q, x, v), g), k), 1e-4, 'dk');
    expectNear(dv, numericGrad((x) => dot(ref(q, k, x), g), v), 1e-4, 'dv');
  });
  // 600 tokens: the backward's key tiles (256) read the heads' panels at an offset.
  for (const n of [150, 600])
  it(`in bf16 (keys and values packed once per head for all query blocks, ${n} tokens) stays within bf16 error of fp32`, async () => {
    const [hq, hkv, hd] = [3, 1, 64];
    const norm = (a: ArrayLike<number>, b: ArrayLike<number>) => {
      let d = 0, s = 0;
      for (let i = 0; i < a.length; i++) (d += (a[i]! - b[i]!) ** 2), (s += b[i]! ** 2);
      return Math.sqrt(d / s);
    };
    const exact = await run3(n, hq, hkv, hd, 0, 90), half = await run3(n, hq, hkv, hd, 0, 90, true);
    expectNear(exact.out, reference(n, hq, hkv, hd, 0)(exact.q, exact.k, exact.v), 1e-5, 'fp32 attention');
    for (const key of ['out', 'dq', 'dk', 'dv'] as const) {
      const e = norm(half[key], exact[key]);
      expect(e, key).toBeLessThan(1e-2);
      expect(e, key).toBeGreaterThan(1e-5); // bf16 really ran
    }
  });
  // Longer than one 64-query block, with and without a sliding window: the blocks' key ranges and
  // masks; at 600 tokens also the backward's tiles of 256 keys (a window of 300 starts them
  // mid-sequence). Gradients are checked along random directions and on sampled coordinates.
  // Soft-capped at 0.7 with q scaled up: most scores lie where tanh bends (Gemma 2's scores reach
  // its cap of 50 the same way); without the cap the outputs differ by far more than the tolerance.
  for (const [window, isa, softcap, n] of [[0, 'best', 0, 150], [40, 'best', 0, 150], [40, 'scalar', 0, 150], [40, 'avx2', 0, 150], [0, 'best', 0.7, 150], [40, 'scalar', 0.7, 150],
    [0, 'best', 0, 600], [300, 'avx2', 0, 600], [300, 'scalar', 0.7, 600]] as const) {
    it(`spans several query blocks (${n} tokens, window ${window}, ${isa} ISA${softcap ? `, scores soft-capped at ${softcap}` : ''})`, async () => {
      const { runtimeInfo, setRuntimeOptions } = await import('../lib/index.js');
      const best = runtimeInfo().isa;
      const [hq, hkv, hd] = [3, 1, 4];
      const ref = reference(n, hq, hkv, hd, window, softcap);
      setRuntimeOptions({ isa: isa === 'best' ? best : isa });
      const r = await run3(n, hq, hkv, hd, window, 20 + window, false, softcap).finally(() => setRuntimeOptions({ isa: best }));
      expectNear(r.out, ref(r.q, r.k, r.v), 1e-5, 'attention');
      if (softcap) expect(() => expectNear(r.out, reference(n, hq, hkv, hd, window)(r.q, r.k, r.v), 1e-2, 'uncapped')).toThrow();
      const loss = (q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) => dot(ref(q, k, v), r.g);
      const cases: [string, Float32Array, Float32Array, (x: Float64Array) => number][] = [
        ['dq', r.q, r.dq, (x) => loss(x, r.k, r.v)],
        ['dk', r.k, r.dk, (x) => loss(r.q, x, r.v)],
        ['dv', r.v, r.dv, (x) => loss(r.q, r.k, x)],
      ];
      for (const [label, x, grad, f] of cases) {
        const dir = randomValues(x.length, x.length + 1), eps = 1e-5;
        const step = (sign: number) => f(Float64Array.from(x, (xi, i) => xi + sign * eps * dir[i]!));
        const numeric = (step(1) - step(-1)) / (2 * eps);
        expect(Math.abs(dot(grad, dir) - numeric), label).toBeLessThan(1e-4 * Math.max(1, Math.abs(numeric)));
        for (let s = 0; s < 12; s++) {
          const i = Math.floor(((s * 7919) % 997) / 997 * x.length);
          const at = (d: number) => f(Float64Array.from(x, (xi, j) => (j === i ? xi + d : xi)));
          expect(Math.abs(grad[i]! - (at(1e-5) - at(-1e-5)) / 2e-5), `${label}[${i}]`).toBeLessThan(1e-4);
        }
      }
    });
  }
});

describe('low-rank passes (LoRA thin products)', () => {
  // D = aD·Y·Wᵀ and G = β·G + aU·Sᵀ·Y in fp64, G optionally stored transposed.
  const reference = (m: number, n: number, r: number, y: Float32Array, w: Float32Array, s: Float32Array, g0: Float32Array, o: { alphaDown: number; alphaUp: number; beta: number; transposed: boolean }) => {
    const d = new Float64Array(m * r), g = new Float64Array(r * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) { let t = 0; for (let c = 0; c < n; c++) t += y[i * n + c]! * w[j * n + c]!; d[i * r + j] = o.alphaDown * t; }
    for (let j = 0; j < r; j++)
      for (let c = 0; c < n; c++) {
        let t = 0;
        for (let i = 0; i < m; i++) t += s[i * r + j]! * y[i * n + c]!;
        const at = o.transposed ? c * r + j : j * n + c;
        g[at] = o.alphaUp * t + o.beta * g0[at]!;
      }
    return { d, g };
  };
  it('match fp64 on every ISA: ragged sizes, rank not a multiple of 8, G transposed and accumulated', async () => {
    const { runtimeInfo, setRuntimeOptions } = await import('../lib/index.js');
    const best = runtimeInfo().isa;
    try {
      for (const isa of ['scalar', 'avx2', best] as const)
        for (const [m, n, r, transposed] of [[37, 45, 11, false], [70, 200, 8, true], [3, 17, 1, false]] as const) {
          setRuntimeOptions({ isa });
          const y = randomValues(m * n, m), w = randomValues(r * n, n), s = randomValues(m * r, r), g0 = randomValues(r * n, 5);
          const o = { m, n, r, alphaDown: 0.5, alphaUp: 2, beta: 1, transposed };
          const want = reference(m, n, r, y, w, s, g0, o);
          for (const op of ['lowrank_pass', 'lowrank_pass_reference']) {
            const d = Tensor.zeros('f32', [m * r]), g = f32([r * n], g0);
            await run(op, [f32([m * n], y), f32([r * n], w), d, f32([m * r], s), g], o);
            expectNear(d.data, want.d, 1e-5, `${op} ${isa} D ${m}x${n}x${r}`);
            expectNear(g.data, want.g, 1e-5, `${op} ${isa} G ${m}x${n}x${r}`);
          }
          // Each product alone; beta 0 ignores whatever G held (NaN here).
          const d = Tensor.zeros('f32', [m * r]), g = f32([r * n], new Float32Array(r * n).fill(NaN));
          await run('lowrank_pass', [f32([m * n], y), f32([r * n], w), d, f32([m * r], s), g], { ...o, beta: 0, up: false });
          expectNear(d.data, want.d, 1e-5, `down only ${isa}`);
          await run('lowrank_pass', [f32([m * n], y), f32([r * n], w), d, f32([m * r], s), g], { ...o, beta: 0, down: false });
          const noBeta = reference(m, n, r, y, w, s, new Float32Array(r * n), o);
          expectNear(g.data, noBeta.g, 1e-5, `up only ${isa}`);
        }
    } finally {
      setRuntimeOptions({ isa: best });
    }
  });
});

describe('GELU (tanh approximation)', () => {
  it('matches an fp64 reference and its derivative on the scalar and vector paths, tails and large |x| included', async () => {
    const { runtimeInfo, setRuntimeOptions } = await import('../lib/index.js');
    const best = runtimeInfo().isa;
    const n = 16 * 700 + 7; // several blocks of the sigma pass, across both threads, and a ragged tail
    const x = Float32Array.from({ length: n }, (_, i) => -12 + (24 * i) / n);
    const dy = Float32Array.from(randomValues(n, 21));
    const k = Math.sqrt(2 / Math.PI), c = 0.044715;
    const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(k * (v + c * v ** 3)));
    const grad = (v: number) => {
      const th = Math.tanh(k * (v + c * v ** 3));
      return 0.5 * (1 + th) + 0.5 * v * (1 - th * th) * k * (1 + 3 * c * v * v);
    };
    try {
      for (const isa of ['scalar', best] as const) {
        setRuntimeOptions({ isa });
        const y = Tensor.zeros('f32', [n]), dx = Tensor.zeros('f32', [n]);
        await run('gelu_forward', [f32([n], x), y], {});
        await run('gelu_backward', [f32([n], x), f32([n], dy), dx], {});
        let worstY = 0, worstD = 0;
        for (let i = 0; i < n; i++) {
          worstY = Math.max(worstY, Math.abs(y.data[i]! - gelu(x[i]!)) / (Math.abs(gelu(x[i]!)) + 1e-3));
          worstD = Math.max(worstD, Math.abs(dx.data[i]! - dy[i]! * grad(x[i]!)) / (Math.abs(dy[i]! * grad(x[i]!)) + 1e-3));
        }
        expect(worstY, `gelu ${isa}`).toBeLessThan(2e-6);
        expect(worstD, `gelu' ${isa}`).toBeLessThan(1e-5);
      }
    } finally {
      setRuntimeOptions({ isa: best });
    }
  });
});

describe('SwiGLU', () => {
  it('backward matches finite differences', async () => {
    const n = 40, gv = randomValues(n, 10).map((x) => x * 4), uv = randomValues(n, 11), da = randomValues(n, 12);
    const ref = (g: ArrayLike<number>, u: ArrayLike<number>) => Float64Array.from(g, (x, i) => (x / (1 + Math.exp(-x))) * u[i]!);
    const a = Tensor.zeros('f32', [n]);
    await run('swiglu_forward', [f32([n], gv), f32([n], uv), a], {});
    expectNear(a.data, ref(gv, uv), 1e-6, 'a');
    const dg = Tensor.zeros('f32', [n]), du = Tensor.zeros('f32', [n]);
    await run('swiglu_backward', [f32([n], gv), f32([n], uv), f32([n], da), dg, du], {});
    expectNear(dg.data, numericGrad((x) => dot(ref(x, uv), da), gv), 1e-5, 'dg');
    expectNear(du.data, numericGrad((x) => dot(ref(gv, x), da), uv), 1e-5, 'du');
  });
});

describe('GeGLU (Gemma\'s gate: tanh GELU of the gate times up)', () => {
  it('forward is gelu_tanh(g)·u in fp64, backward matches finite differences, over several blocks and threads', async () => {
    const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    const ref = (g: ArrayLike<number>, u: ArrayLike<number>) => Float64Array.from(g, (x, i) => gelu(x) * u[i]!);
    const n = 5000, gv = randomValues(n, 13).map((x) => x * 4), uv = randomValues(n, 14), da = randomValues(n, 15);
    const a = Tensor.zeros('f32', [n]);
    await run('geglu_forward', [f32([n], gv), f32([n], uv), a], {});
    expectNear(a.data, ref(gv, uv), 2e-6, 'a');
    const m = 40, dg = Tensor.zeros('f32', [m]), du = Tensor.zeros('f32', [m]);
    const g40 = gv.slice(0, m), u40 = uv.slice(0, m), d40 = da.slice(0, m);
    await run('geglu_backward', [f32([m], g40), f32([m], u40), f32([m], d40), dg, du], {});
    expectNear(dg.data, numericGrad((x) => dot(ref(x, u40), d40), g40), 1e-5, 'dg');
    expectNear(du.data, numericGrad((x) => dot(ref(g40, x), d40), u40), 1e-5, 'du');
  });

  it('softcap is c·tanh(x / c) in fp64; its backward multiplies by 1 − tanh², from the capped values', async () => {
    const n = 70000, cap = 30, v = randomValues(n, 17).map((x) => x * 90), t = f32([n], v);
    await run('softcap', [t], { cap });
    const ref = Float64Array.from(v, (x) => cap * Math.tanh(Math.fround(x) / cap));
    expectNear(t.data, ref, 1e-6, 'capped');
    const dy = randomValues(n, 18), d = f32([n], dy);
    await run('softcap_backward', [f32([n], ref), d], { cap });
    expectNear(d.data, Float64Array.from(v, (x, i) => dy[i]! * (1 - Math.tanh(Math.fround(x) / cap) ** 2)), 1e-6, 'dx');
  });

  it('scale multiplies in place', async () => {
    const v = randomValues(70000, 16), t = f32([v.length], v);
    await run('scale', [t], { scale: 25.3 });
    expectNear(t.data, Float64Array.from(v, (x) => Math.fround(x) * 25.3), 1e-6, 'scaled');
  });
});

describe('cross-entropy with ignored positions', () => {
  const [rows, vocab] = [6, 151]; // the vectorized max and scaling: whole blocks (64 floats, AVX2 32) and ragged tails
  const labels = [3, -100, 0, 10, -100, 7];
  const ref = (z: ArrayLike<number>) => {
    let loss = 0, count = 0;
    for (let r = 0; r < rows; r++) {
      if (labels[r] === -100) continue;
      let m = -Infinity;
      for (let i = 0; i < vocab; i++) m = Math.max(m, z[r * vocab + i]!);
      let s = 0;
      for (let i = 0; i < vocab; i++) s += Math.exp(z[r * vocab + i]! - m);
      loss += m + Math.log(s) - z[r * vocab + labels[r]!]!;
      count++;
    }
    return loss / count;
  };
  it('loss matches fp64 and its gradient matches finite differences (scalar and vector paths)', async () => {
    const { runtimeInfo, setRuntimeOptions } = await import('../lib/index.js');
    const best = runtimeInfo().isa;
    const z = randomValues(rows * vocab, 13).map((x) => x * 3);
    z[2 * vocab + 128] = 100; // a row whose maximum sits in the tail: missing it would overflow exp
    for (let i = 0; i < vocab; i++) z[5 * vocab + i] -= 300; // all far below 0: a max taken as 0 would underflow every exp
    const grad = numericGrad(ref, z);
    try {
      for (const isa of new Set(['scalar', 'avx2', best] as const)) {
        setRuntimeOptions({ isa });
        const logits = f32([rows, vocab], z);
        const [loss, count] = await run('cross_entropy', [logits, Tensor.from('i32', [rows], labels)], { rows, vocab, grad: true });
        expect(count).toBe(4);
        expect(Math.abs(loss! - ref(z)), isa).toBeLessThan(1e-6);
        // The gradient of the rows' sum (the optimizer divides by the count): count × d(mean)/dz.
        expectNear(logits.data, grad.map((g) => g * count!), 1e-5, `dlogits ${isa}`);
      }
    } finally {
      setRuntimeOptions({ isa: best });
    }
    expect(() => run('cross_entropy', [f32([rows, vocab], z), Tensor.from('i32', [rows], [151, 0, 0, 0, 0, 0])], { rows, vocab })).toThrow(
      'Expected labels in [0, 151) or -100 but row 0 holds 151',
    );
  });
});

describe('AdamW', () => {
  it('matches torch.optim.AdamW over three steps', async () => {
    const fx = JSON.parse(readFileSync(new URL('./reference/fixtures/adamw.json', import.meta.url), 'utf8'));
    const n = fx.initial.length;
    const p = f32([n], fx.initial), m = Tensor.zeros('f32', [n]), v = Tensor.zeros('f32', [n]);
    for (let step = 1; step <= 3; step++) {
      await run('adamw', [p, f32([n], fx.grads[step - 1]), m, v], { lr: fx.lr, beta1: fx.beta1, beta2: fx.beta2, eps: fx.eps, weightDecay: fx.weightDecay, step });
      expectNear(p.data, fx.after[step - 1], 1e-6, `step ${step}`);
    }
  });
});

it('runOp rejects unknown ops and mis-sized tensors', async () => {
  expect(() => native.runOp('nope', [], {})).toThrow('Expected a known op name but received "nope"');
  expect(() => native.runOp('swiglu_forward', [Tensor.zeros('f32', [3]).handle, Tensor.zeros('f32', [4]).handle, Tensor.zeros('f32', [3]).handle], {})).toThrow(
    'swiglu_forward: expected tensors[1] to be f32 with 3 elements but received f32 [4]',
  );
});

describe('vectorized exp (softmax, loss, SiLU)', () => {
  it('is within 4 ulp of exp on every ISA, with tails and extreme inputs, and sums in fp64', async () => {
    const { runtimeInfo, setRuntimeOptions } = await import('../lib/index.js');
    const best = runtimeInfo().isa;
    const n = 16 * 257 + 5; // not a multiple of the vector width
    const x = Float32Array.from({ length: n }, (_, i) => -104 + (193 * i) / n); // -104 .. 89: underflow to overflow edges
    try {
      for (const isa of new Set(['scalar', 'avx2', best] as const)) {
        setRuntimeOptions({ isa });
        const y = Tensor.zeros('f32', [n]);
        const [sum] = await run('exp_shifted_sum', [f32([n], x), y], { shift: 1.5 });
        let total = 0;
        for (let i = 0; i < n; i++) {
          const want = Math.exp(Math.fround(x[i]! - 1.5));
          total += y.data[i]!;
          if (want > 1e-37 && want < 3e38) expect(Math.abs(y.data[i]! - want) / want, `${isa} x=${x[i]}`).toBeLessThan(4 * 2 ** -23);
          else if (want <= 1e-45) expect(y.data[i]).toBeLessThan(1e-37);
        }
        expect(Math.abs(sum! - total) / total).toBeLessThan(1e-12);
        const s = Tensor.zeros('f32', [n]);
        await run('sigmoid', [f32([n], x), s], {});
        for (let i = 0; i < n; i += 37) expect(Math.abs(s.data[i]! - 1 / (1 + Math.exp(-x[i]!)))).toBeLessThan(3e-7);
      }
    } finally {
      setRuntimeOptions({ isa: best });
    }
  });
});

describe('backends', () => {
  // runOp runs an op through a backend's op table, as model code does; the CPU's is the default.
  it('runs an op through the named backend and refuses one this build does not have', async () => {
    const x = f32([2, 8], randomValues(16, 3)), w = f32([8], randomValues(8, 4));
    const a = f32([2, 8], new Float32Array(16)), b = f32([2, 8], new Float32Array(16));
    expect(runtimeInfo().backends).toContain('cpu');
    await native.runOp('rmsnorm_forward', [x.handle, w.handle, a.handle], { rows: 2, dim: 8 });
    await native.runOp('rmsnorm_forward', [x.handle, w.handle, b.handle], { rows: 2, dim: 8, backend: 'cpu' });
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
    let refused: unknown;
    try {
      await native.runOp('rmsnorm_forward', [x.handle, w.handle, b.handle], { rows: 2, dim: 8, backend: 'tpu' });
    } catch (e) {
      refused = e;
    }
    expect(refused).toMatchObject({ code: 'ERR_TUNEKIT_UNSUPPORTED', message: expect.stringContaining('(cpu) but received "tpu"') });
  });
});
