// Checkpoints: a folder per optimizer step,
//   optimizer.safetensors  the flat trainable parameters and AdamW moments (fp32, bit-exact)
//   optimizer-shard-R.safetensors
//                          with several ranks at ZeRO stage 1 or 2, rank R's shard of the moments
//                          (optimizer.safetensors then holds the parameters only); metadata gives
//                          each shard's offset, length and the world size
//   adapter/               the LoRA adapters as a PEFT folder (usable on their own)
//   trainer_state.json     step, epoch, data position, RNG seeds, best metric, history, options
// written into a temporary folder that is renamed into place once complete (by rank 0, once every
// rank has written its shard: the rename is the completion marker), so a crash or `kill -9` at
// any moment leaves the previous checkpoints as they were. A sharded checkpoint loads into any
// world size and stage: the shards are put together and each rank keeps its own part.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TunekitError } from '../errors.js';
import { savePeftAdapter } from '../export/peft.js';
import type { Model, OptimizerState } from '../model/load.js';
import { openSafetensors } from '../safetensors/read.js';
import { writeSafetensors } from '../safetensors/write.js';
import { Tensor } from '../tensor.js';
import { attempt, settle } from '../dist/agree.js';
import type { ProcessGroup } from '../dist/group.js';

export interface TrainerState {
  version: 1;
  step: number;
  epoch: number;
  /** Training examples consumed in the current epoch (where the next batch starts). */
  position: number;
  /**
   * The random state: training itself draws no random numbers (no dropout in the step), and the
   * data order is drawn from the dataset's seed and this epoch alone.
   */
  rng: { epoch: number };
  trainable: Model['trainable'];
  lora: Model['lora'];
  best: { step: number; value: number } | null;
  /** Evaluations since the best one (early stopping's patience counter). */
  sinceBest: number;
  history: { train: Record<string, number>[]; eval: Record<string, number | string>[] };
  options: Record<string, unknown>;
  /** Seconds spent training up to this step, over every segment of a resumed run (absent in older checkpoints: 0). */
  seconds?: number;
  /** The segments of the run up to this one: 1, plus one for each resume (absent in older checkpoints: 1). */
  segments?: number;
}

const PREFIX = 'checkpoint-';

async function replaceDir(tmp: string, dir: string): Promise<void> {
  if (existsSync(dir)) {
    const old = `${dir}.old-${process.pid}`;
    await rename(dir, old);
    await rename(tmp, dir);
    await rm(old, { recursive: true, force: true });
  } else {
    await rename(tmp, dir);
  }
}

/** The ranks that write a checkpoint together, and the name of their shared temporary folder. */
export interface CheckpointGroup {
  group: ProcessGroup;
  /** Rank 0's process id: names the temporary folder every rank writes into. */
  tag: number;
}

const shardFile = (rank: number) => `optimizer-shard-${rank}.safetensors`;

function ioError(dir: string, e: unknown): unknown {
  if (e instanceof TunekitError) return e;
  const err = e as NodeJS.ErrnoException;
  return new TunekitError('ERR_TUNEKIT_IO', `could not write checkpoint ${dir}: ${err.code === 'ENOSPC' ? 'no space left on device' : err.message}`, { cause: e });
}

/**
 * Writes the model's trainable state and the trainer's state into `dir`, atomically (the "best"
 * snapshot leaves out the adapter folder). With a group, every rank calls it: each writes its
 * shard of the moments, rank 0 the rest, and rank 0 renames the folder into place.
 */
export async function saveCheckpoint(model: Model, state: TrainerState, dir: string, stateOnly = false, dist?: CheckpointGroup): Promise<void> {
  const group = dist?.group, rank = group?.rank ?? 0;
  const tmp = `${dir}.tmp-${dist?.tag ?? process.pid}`;
  const together = async (what: string, fn: () => Promise<void>) => {
    const error = await attempt(fn);
    if (!group) {
      if (error !== undefined) throw ioError(dir, error);
      return;
    }
    await settle(group, error === undefined ? undefined : ioError(dir, error), what);
  };
  try {
    await together(`to prepare checkpoint ${dir}`, async () => {
      if (rank !== 0) return;
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp, { recursive: true });
    });
    await together(`to write checkpoint ${dir}`, async () => {
      // Parameters and moments only (no gradient copy: for full fine-tuning each is model-sized).
      const raw = model.native.optimizerState(['params', 'm', 'v']);
      const size = raw.params.shape[0]!, world = group?.world ?? 1;
      const sharded = raw.momentsSharded;
      const t = (h: typeof raw.params) => new Tensor(h) as Tensor<'f32'>;
      const part = (h: typeof raw.m) => Tensor.from('f32', [raw.momentsLength], t(h).data.subarray(0, raw.momentsLength));
      if (sharded) {
        await writeSafetensors(join(tmp, shardFile(rank)), { m: part(raw.m), v: part(raw.v) }, {
          metadata: { rank: String(rank), world: String(world), offset: String(raw.momentsOffset), length: String(raw.momentsLength), size: String(size) },
        });
      }
      if (rank !== 0) return;
      const tensors: Record<string, Tensor<'f32'>> = sharded ? { params: t(raw.params) } : { params: t(raw.params), m: t(raw.m), v: t(raw.v) };
      await writeSafetensors(join(tmp, 'optimizer.safetensors'), tensors, {
        metadata: { step: String(raw.step), layout: layoutStamp(model), world: String(world), shards: String(sharded ? world : 0) },
      });
      if (model.trainable === 'lora' && !stateOnly) await savePeftAdapter(model, join(tmp, 'adapter'));
      await writeFile(join(tmp, 'trainer_state.json'), JSON.stringify(state, null, 1) + '\n');
    });
    await together(`to complete checkpoint ${dir}`, async () => {
      if (rank === 0) await replaceDir(tmp, dir);
    });
  } catch (e) {
    if (rank === 0) await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}

export async function readTrainerState(dir: string): Promise<TrainerState> {
  let state: TrainerState;
  try {
    state = JSON.parse(await readFile(join(dir, 'trainer_state.json'), 'utf8'));
  } catch (e) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${dir}/trainer_state.json: cannot be read (${(e as Error).message})`);
  }
  if (state.version !== 1) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `${dir}: checkpoint version ${state.version} is not supported`);
  return state;
}

/**
 * A fingerprint of the model's trainable layout (each tensor's name, kind, offset and shape): a
 * flat vector resumed into another layout of the same size would put every value in the wrong place
 * without an error.
 */
export function layoutStamp(model: Model): string {
  return createHash('sha256').update(JSON.stringify(model.trainableLayout())).digest('hex').slice(0, 32);
}

/**
 * The optimizer state stored in a checkpoint folder (the moments put together from every rank's
 * shard when several wrote it), and the layout stamp it was written with (if any).
 */
export async function readOptimizerState(dir: string): Promise<OptimizerState & { layout?: string }> {
  const r = await openSafetensors(join(dir, 'optimizer.safetensors'));
  try {
    const read = async (n: string) => (await r.read(n)) as Tensor<'f32'>;
    const params = await read('params');
    const shards = Number(r.metadata.shards ?? 0);
    const step = Number(r.metadata.step ?? 0), layout = r.metadata.layout;
    if (!shards) return { params, m: await read('m'), v: await read('v'), step, layout };
    const size = params.shape[0]!;
    const m = new Float32Array(size), v = new Float32Array(size);
    let covered = 0;
    for (let rank = 0; rank < shards; rank++) {
      const file = join(dir, shardFile(rank));
      if (!existsSync(file)) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${dir}: the checkpoint was written by ${shards} ranks but ${shardFile(rank)} is missing`);
      const s = await openSafetensors(file);
      try {
        const offset = Number(s.metadata.offset), length = Number(s.metadata.length);
        if (!(Number.isInteger(offset) && Number.isInteger(length) && offset === covered && offset + length <= size && Number(s.metadata.size) === size)) {
          throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: expected the shard starting at ${covered} of ${size} values but its metadata says offset ${s.metadata.offset}, length ${s.metadata.length}, size ${s.metadata.size}`);
        }
        const sm = (await s.read('m')) as Tensor<'f32'>, sv = (await s.read('v')) as Tensor<'f32'>;
        if (sm.shape[0] !== length || sv.shape[0] !== length) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${file}: expected m and v of ${length} values`);
        m.set(sm.data, offset), v.set(sv.data, offset);
        covered += length;
      } finally {
        await s.close();
      }
    }
    if (covered !== size) throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${dir}: the shards cover ${covered} of ${size} values`);
    return { params, m: Tensor.from('f32', [size], m), v: Tensor.from('f32', [size], v), step, layout };
  } finally {
    await r.close();
  }
}

/**
 * Turns a checkpoint written by several ranks into one a single process writes (moments whole in
 * optimizer.safetensors), in `out` (default: in place). What DeepSpeed users know as
 * zero_to_fp32; tunekit resumes sharded checkpoints on any world size without it.
 */
export async function consolidateCheckpoint(dir: string, out = dir): Promise<{ dir: string; shards: number }> {
  const s = await readOptimizerState(dir);
  const meta = await openSafetensors(join(dir, 'optimizer.safetensors'));
  const shards = Number(meta.metadata.shards ?? 0);
  await meta.close();
  const tmp = `${out}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  try {
    await cp(dir, tmp, { recursive: true });
    for (const n of await readdir(tmp)) if (/^optimizer-shard-\d+\.safetensors$/.test(n)) await rm(join(tmp, n));
    await writeSafetensors(join(tmp, 'optimizer.safetensors'), { params: s.params, m: s.m, v: s.v }, {
      metadata: { step: String(s.step), ...(s.layout ? { layout: s.layout } : {}), world: '1', shards: '0' },
    });
    await replaceDir(tmp, out);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw ioError(out, e);
  }
  return { dir: out, shards };
}

/** Checkpoint folders under `outputDir`, oldest first (half-written temporaries are ignored). */
export async function listCheckpoints(outputDir: string): Promise<{ step: number; dir: string }[]> {
  if (!existsSync(outputDir)) return [];
  const names = await readdir(outputDir);
  return names
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null && existsSync(join(outputDir, m[0], 'trainer_state.json')))
    .map((m) => ({ step: Number(m[1]), dir: join(outputDir, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

export const checkpointDir = (outputDir: string, step: number) => join(outputDir, `${PREFIX}${step}`);

/** Removes all but the newest `keep` checkpoints (the best one lives in its own folder). */
export async function pruneCheckpoints(outputDir: string, keep: number): Promise<void> {
  const all = await listCheckpoints(outputDir);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) await rm(c.dir, { recursive: true, force: true });
  for (const n of await readdir(outputDir)) {
    if (/\.(tmp|old)-\d+$/.test(n)) await rm(join(outputDir, n), { recursive: true, force: true }); // left by a crash
  }
}
