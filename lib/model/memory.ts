// Refusing to load a model that cannot fit, before allocating anything: the OS would otherwise
// kill the process part-way through. The budget is the memory available now (MemAvailable on
// Linux, os.freemem() elsewhere), or TUNEKIT_MEMORY_LIMIT bytes when set.
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { TunekitError } from '../errors.js';

function availableBytes(): number {
  const limit = process.env.TUNEKIT_MEMORY_LIMIT;
  if (limit !== undefined && Number.isFinite(Number(limit)) && Number(limit) > 0) return Number(limit);
  try {
    const line = readFileSync('/proc/meminfo', 'utf8').split('\n').find((l) => l.startsWith('MemAvailable:'));
    if (line) return Number(line.replace(/\D+/g, '')) * 1024;
  } catch {
    // not Linux
  }
  return freemem();
}

const size = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`);

/** Throws ERR_TUNEKIT_OUT_OF_MEMORY when `bytes` (what loading will allocate) exceeds what is available. */
export function checkFits(what: string, bytes: number): void {
  const available = availableBytes();
  if (bytes > available) {
    throw new TunekitError(
      'ERR_TUNEKIT_OUT_OF_MEMORY',
      `${what}: loading needs about ${size(bytes)} but only ${size(available)} of memory is available; ` +
        `use a smaller model, or quantize it at load (loadModel(path, { quantize: 'nf4' }))`,
    );
  }
}
