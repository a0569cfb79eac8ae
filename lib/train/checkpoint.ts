// Checkpoints: a folder per optimizer step,
//   optimizer.safetensors  the flat trainable parameters and AdamW moments (fp32, bit-exact)
//   adapter/               the LoRA adapters as a PEFT folder (usable on their own)
//   trainer_state.json     step, epoch, data position, RNG seeds, best metric, history, options
// written into a temporary folder that is renamed into place once complete, so a crash or
// `kill -9` at any moment leaves the previous checkpoints as they were.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TunekitError } from '../errors.js';
import { savePeftAdapter } from '../export/peft.js';
import type { Model, OptimizerState } from '../model/load.js';
import { openSafetensors } from '../safetensors/read.js';
import { writeSafetensors } from '../safetensors/write.js';
import { Tensor } from '../tensor.js';

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

/**
 * Writes the model's trainable state and the trainer's state into `dir`, atomically (the "best"
 * snapshot leaves out the adapter folder).
 */
export async function saveCheckpoint(model: Model, state: TrainerState, dir: string, stateOnly = false): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  try {
    await mkdir(tmp, { recursive: true });
    // Parameters and moments only (no gradient copy: for full fine-tuning each is model-sized).
    const raw = model.native.optimizerState(['params', 'm', 'v']);
    const t = (h: typeof raw.params) => new Tensor(h) as Tensor<'f32'>;
    const s = { params: t(raw.params), m: t(raw.m), v: t(raw.v), step: raw.step };
    await writeSafetensors(join(tmp, 'optimizer.safetensors'), { params: s.params, m: s.m, v: s.v }, { metadata: { step: String(s.step), layout: layoutStamp(model) } });
    if (model.trainable === 'lora' && !stateOnly) await savePeftAdapter(model, join(tmp, 'adapter'));
    await writeFile(join(tmp, 'trainer_state.json'), JSON.stringify(state, null, 1) + '\n');
    await replaceDir(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    if (e instanceof TunekitError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new TunekitError('ERR_TUNEKIT_IO', `could not write checkpoint ${dir}: ${err.code === 'ENOSPC' ? 'no space left on device' : err.message}`, { cause: e });
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

/** The optimizer state stored in a checkpoint folder, and the layout stamp it was written with (if any). */
export async function readOptimizerState(dir: string): Promise<OptimizerState & { layout?: string }> {
  const r = await openSafetensors(join(dir, 'optimizer.safetensors'));
  try {
    const read = async (n: string) => (await r.read(n)) as Tensor<'f32'>;
    return { params: await read('params'), m: await read('m'), v: await read('v'), step: Number(r.metadata.step ?? 0), layout: r.metadata.layout };
  } finally {
    await r.close();
  }
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
