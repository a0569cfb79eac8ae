// The sharded optimizer step (native/optim/optimizer.h) through the communication interface
// (native/dist/comm.h): two in-process ranks, each holding the gradient sums of its own tokens and
// stepping its own shard, must give the parameters, moments and gradient norm of the unsharded
// step on the summed gradients, bit for bit; and the unsharded step must be AdamW on the clipped
// mean gradient, checked against a plain fp64 implementation here.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../lib/index.js';
import { native } from '../lib/native.js';

const run = (name: string, ts: Tensor[], o: Record<string, number | boolean>) => native.runOp(name, ts.map((t) => t.handle), o);

// Gradient sums with full mantissas (so the norm's summation order shows in its last bits); each
// value sits on one rank and is 0 on the other, so the ranks' sum is exact.
function gradients(n: number, seed: number) {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const g0 = new Float32Array(n), g1 = new Float32Array(n), g = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    g[i] = (next() - 0.5) * 3;
    (next() < 0.5 ? g0 : g1)[i] = g[i]!;
  }
  return { g0, g1, g };
}

const n = 2 * 3 * 4096 + 1234; // several norm chunks per shard, a padded last shard
const tokens0 = 37, tokens1 = 58;
const settings = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 0.5, scaleOffset: 5000, scaleLength: 9000, scale: 0.25 };

async function steps(world: 1 | 2, count: number, stage = 1) {
  const init = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.1);
  const p = Tensor.from('f32', [n], init), m = Tensor.zeros('f32', [n]), v = Tensor.zeros('f32', [n]);
  const norms: number[] = [];
  for (let step = 1; step <= count; step++) {
    const { g0, g1, g } = gradients(n, step);
    const grads = world === 1 ? [Tensor.from('f32', [n], g), Tensor.zeros('f32', [n])] : [Tensor.from('f32', [n], g0), Tensor.from('f32', [n], g1)];
    const [norm, tokens, agree] = await run('optimizer_step', [p, grads[0]!, grads[1]!, m, v], { ...settings, world, tokens0, tokens1, step, stage });
    expect(tokens).toBe(tokens0 + tokens1);
    expect(agree, 'every rank holds the same parameters after the gather (and at stage 0 the same moments)').toBe(1);
    norms.push(norm!);
  }
  return { p: p.data, m: m.data, v: v.data, norms };
}

describe('sharded optimizer step', () => {
  it.each([0, 1, 2])('two ranks at ZeRO stage %i give the unsharded step bit for bit, clipping and lr ranges included', async (stage) => {
    const one = await steps(1, 3), two = await steps(2, 3, stage);
    expect(two.norms).toEqual(one.norms);
    expect(Buffer.from(two.p.buffer).equals(Buffer.from(one.p.buffer))).toBe(true);
    expect(Buffer.from(two.m.buffer).equals(Buffer.from(one.m.buffer))).toBe(true);
    expect(Buffer.from(two.v.buffer).equals(Buffer.from(one.v.buffer))).toBe(true);
  });

  it('is AdamW on the clipped mean gradient (fp64 reference), at each range\'s learning rate', async () => {
    const got = await steps(1, 1);
    const { g } = gradients(n, 1);
    const T = tokens0 + tokens1;
    const mean = Array.from(g, (x) => x / T);
    const norm = Math.sqrt(mean.reduce((a, x) => a + x * x, 0));
    expect(Math.abs(got.norms[0]! - norm) / norm).toBeLessThan(1e-12);
    const clip = Math.min(1, settings.maxGradNorm / (norm + 1e-6));
    expect(clip).toBeLessThan(1); // the case exercises clipping
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const lr = settings.lr * (i >= settings.scaleOffset && i < settings.scaleOffset + settings.scaleLength ? settings.scale : 1);
      const gi = mean[i]! * clip, p0 = Math.fround(Math.sin(i) * 0.1);
      const m = (1 - settings.beta1) * gi, v = (1 - settings.beta2) * gi * gi;
      const want = p0 * (1 - lr * settings.weightDecay) - (lr / (1 - settings.beta1)) * m / (Math.sqrt(v / (1 - settings.beta2)) + settings.eps);
      worst = Math.max(worst, Math.abs(got.p[i]! - want) / (Math.abs(want) + 1e-3));
    }
    expect(worst).toBeLessThan(1e-5);
  });

  it('leaves the parameters alone when the window has no labelled token', async () => {
    const p = Tensor.from('f32', [5], [1, 2, 3, 4, 5]), g = Tensor.from('f32', [5], [1, 1, 1, 1, 1]);
    const [norm] = await run('optimizer_step', [p, g, Tensor.zeros('f32', [5]), Tensor.zeros('f32', [5]), Tensor.zeros('f32', [5])], { lr: 1, tokens0: 0, tokens1: 0 });
    expect(norm).toBe(0);
    expect(Array.from(p.data)).toEqual([1, 2, 3, 4, 5]);
  });
});
