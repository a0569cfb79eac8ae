// Runtime: ISA detection and forcing, thread settings, async calls, and errors that never crash.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { gemm, measureLimit, runtimeInfo, setRuntimeOptions, Tensor, TunekitError } from '../lib/index.js';
import { native } from '../lib/native.js';
import { randomValues } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Loads the addon in a fresh process with `env` and returns its runtimeInfo(). */
function infoWith(env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['-e', "console.log(JSON.stringify(require('node-gyp-build')(process.cwd()).runtimeInfo()))"], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('runtime', () => {
  it('reports the ISA, threads and build flavour', () => {
    const info = runtimeInfo();
    expect(['scalar', 'avx2', 'avx512', 'avx512bf16', 'amx']).toContain(info.isa);
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(info.buildFlavour).toMatch(/^(cmake|node-gyp)-(cpu|cuda)$/);
    if (info.cpuFeatures.avx512f) expect(info.cpuFeatures.avx2).toBe(true);
  });

  it('honours TUNEKIT_ISA and TUNEKIT_THREADS at load', () => {
    const forced = infoWith({ TUNEKIT_ISA: 'scalar', TUNEKIT_THREADS: '3' });
    expect(forced.isa).toBe('scalar');
    expect(forced.isaForced).toBe(true);
    expect(forced.threads).toBe(3);
    // An ISA the CPU lacks (or a typo) falls back to the best available rather than failing to load.
    const bogus = infoWith({ TUNEKIT_ISA: 'nonsense' });
    expect(bogus.isa).toBe(bogus.detectedIsa);
  });

  it('emulates the AMX tiles on request where the CPU has AVX512_BF16 but no AMX, and measures real tiles only', async () => {
    const info = runtimeInfo();
    const emulated = infoWith({ TUNEKIT_EMULATE_AMX: '1' });
    const realAmx = info.cpuFeatures.amxBf16 && !info.cpuFeatures.amxEmulated;
    if (realAmx) {
      expect(emulated.cpuFeatures.amxEmulated).toBe(false); // the hardware wins
    } else if (info.cpuFeatures.avx512bf16) {
      expect(emulated.detectedIsa).toBe('amx');
      expect(emulated.cpuFeatures.amxEmulated).toBe(true);
    } else {
      expect(emulated.detectedIsa).toBe(info.detectedIsa); // nothing to emulate with
    }
    const peak = await measureLimit('amx', 0.05);
    if (realAmx && info.isa === 'amx') expect(peak).toBeGreaterThan(0);
    else expect(peak).toBe(0);
    await expect(measureLimit('tiles' as never)).rejects.toThrow(/Expected one of .*"amx".* for kind but received "tiles"/);
  });

  it('validates runtime options with messages that name the option', () => {
    expect(() => setRuntimeOptions({ threads: 0 })).toThrow('Expected number >= 1 for threads but received 0');
    expect(() => setRuntimeOptions({ isa: 'sse9' as never })).toThrow(/Expected one of .*"avx2".* for isa but received "sse9"/);
    expect(() => setRuntimeOptions({ thread: 2 } as never)).toThrow('Unknown option thread for setRuntimeOptions');
    const info = runtimeInfo();
    if (info.detectedIsa !== 'amx') {
      try {
        setRuntimeOptions({ isa: 'amx' });
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(TunekitError);
        expect((e as TunekitError).code).toBe('ERR_TUNEKIT_UNSUPPORTED');
      }
    }
  });

  it('keeps the event loop running during a long native call', async () => {
    const n = 256;
    const a = Tensor.from('f32', [n, n], randomValues(n * n, 1));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = performance.now();
    // The plain reference path is slow on purpose: ~17M multiply-adds per repeat.
    await gemm(a, a, { reference: true, repeat: 20 });
    const elapsed = performance.now() - started;
    clearInterval(timer);
    expect(elapsed).toBeGreaterThan(50);
    expect(ticks).toBeGreaterThanOrEqual(Math.floor(elapsed / 5 / 4));
  });

  it('turns native failures into TunekitErrors with the caller stack', async () => {
    const a = Tensor.zeros('f32', [2, 2]);
    const err = await gemm(a, Tensor.zeros('f32', [3, 3])).catch((e) => e);
    expect(err).toBeInstanceOf(TunekitError);
    expect(err.code).toBe('ERR_TUNEKIT_INVALID_ARGUMENT');
    expect(err.stack).toContain('runtime.test.ts');
  });

  it('rejects forged handles and bad arguments at the native boundary without crashing', async () => {
    const forged = { dtype: 'f32', shape: [2, 2], byteLength: 16, buffer: new ArrayBuffer(16) };
    const t = Tensor.zeros('f32', [2, 2]).handle;
    expect(() => native.gemm(forged as never, t, t, {})).toThrow(/Expected a Tensor for a/);
    expect(() => native.gemm(t, t, t, {})).toThrow(/c not to alias a or b/);
    expect(() => native.gemm(t, t, Tensor.zeros('f32', [2, 2]).handle, { repeat: -1 })).toThrow(/repeat/);
    expect(() => new native.Tensor('f64' as never, [1])).toThrow(/dtype one of/);
    expect(() => new native.Tensor('f32', [-1])).toThrow(/non-negative integer at shape\[0\]/);
    expect(() => new native.Tensor('f32', [2 ** 40, 2 ** 20])).toThrow(/64 bits|allocate/);
    expect(() => Tensor.from('f32', [2, 2], [1, 2, 3])).toThrow('Expected 4 values for shape [2, 2] but received 3');
  });

  it('frees tensors on dispose, even while a native call still uses them', async () => {
    // 6 GiB through a synchronous loop: without dispose, finalizers would not run in time and the
    // resident set would hold all of it.
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 100; i++) {
      const t = Tensor.zeros('f32', [16 << 20]);
      t.data[i] = 1;
      t.dispose();
    }
    expect(process.memoryUsage().rss - before).toBeLessThan(2 ** 30);
    const a = Tensor.from('f32', [300, 300], randomValues(300 * 300, 3));
    const pending = gemm(a, a, { reference: true });
    a.dispose(); // the worker holds its own reference
    expect((await pending).shape).toEqual([300, 300]);
    expect(a.data.length).toBe(0);
    await expect(gemm(a, a)).rejects.toThrow('Expected a live Tensor for a but it was disposed');
  });

  it('shares tensor memory with JS without copies', () => {
    const t = Tensor.zeros('f32', [4]);
    t.data[2] = 5;
    expect(new Float32Array(t.handle.buffer)[2]).toBe(5);
    expect(t.handle.buffer).toBe(t.handle.buffer);
  });
});
