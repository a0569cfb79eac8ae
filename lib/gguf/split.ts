// GGUF files cut by llama.cpp's gguf-split (how the hub ships models over 50 GB, and some smaller
// ones): parts named <prefix>-00001-of-00003.gguf, the first holding every metadata key, each
// holding split.no, split.count and its share of the tensors, split.tensors.count the total.
// Opened from the first part as one file, as llama.cpp's loader opens them.
import { basename, dirname, join } from 'node:path';
import { TunekitError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import type { Weights } from '../weights.js';
import type { GgufTensorInfo, GgufValue } from './format.js';
import type { GgufFile } from './read.js';

const PART_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

/** split.count of a file's metadata: 0 for a whole file. */
export function splitCount(metadata: Map<string, GgufValue>): number {
  const n = metadata.get('split.count');
  return typeof n === 'number' ? n : 0;
}

function corrupt(file: string, what: string): TunekitError {
  return new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: ${what}`);
}

/** The other parts of a split GGUF whose first part is `first`, opened with `open`, joined into one. */
export async function joinSplitGguf(first: GgufFile, open: (path: string) => Promise<GgufFile>): Promise<GgufFile> {
  const count = splitCount(first.metadata), file = first.file;
  const no = first.metadata.get('split.no') ?? 0, total = first.metadata.get('split.tensors.count');
  const name = PART_NAME.exec(basename(file));
  const partPath = (i: number) => join(dirname(file), `${name![1]}-${String(i + 1).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.gguf`);
  if (!Number.isInteger(count) || count > 65535) throw corrupt(file, `split.count ${count} is not a part count (1 to 65535)`);
  if (!name || Number(name[3]) !== count) {
    throw corrupt(file, `split.count says this is one of ${count} parts, but the name does not end in -NNNNN-of-${String(count).padStart(5, '0')}.gguf as gguf-split names them`);
  }
  if (no !== 0) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${file} is part ${Number(no) + 1} of a ${count}-part GGUF: load the first part, ${partPath(0)}`);
  if (typeof total !== 'number' || !Number.isInteger(total) || total < 0) throw corrupt(file, `expected split.tensors.count (the tensors of all ${count} parts) but found ${String(total)}`);
  const parts: GgufFile[] = [first];
  try {
    const tensors = new Map<string, GgufTensorInfo>(), owner = new Map<string, GgufFile>();
    const add = (part: GgufFile) => {
      for (const [n, info] of part.tensors) {
        if (tensors.has(n)) throw corrupt(part.file, `tensor ${n} is also in ${owner.get(n)!.file}`);
        tensors.set(n, info), owner.set(n, part);
      }
    };
    add(first);
    for (let i = 1; i < count; i++) {
      const path = partPath(i);
      const part = await open(path).catch((e: unknown) => {
        const code = e instanceof TunekitError ? e.code : 'ERR_TUNEKIT_IO';
        throw new TunekitError(code, `${file} needs part ${i + 1} of ${count} beside it: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      });
      parts.push(part);
      if (part.metadata.get('split.no') !== i || splitCount(part.metadata) !== count) {
        throw corrupt(path, `expected split.no ${i} and split.count ${count} (part ${i + 1} of ${file}) but found ${String(part.metadata.get('split.no'))} and ${String(part.metadata.get('split.count'))}`);
      }
      add(part);
    }
    if (tensors.size !== total) throw corrupt(file, `split.tensors.count is ${total} but the ${count} parts hold ${tensors.size} tensors`);
    return {
      file, version: first.version, metadata: first.metadata, tensors,
      read: (n: string): Promise<Tensor | Weights> => (owner.get(n) ?? first).read(n),
      close: async () => {
        await Promise.all(parts.map((p) => p.close()));
      },
    };
  } catch (e) {
    await Promise.all(parts.map((p) => p.close()));
    throw e;
  }
}
