// Hyperparameter search: grid, random (seeded) and successive halving over any settings of a
// job (learning rate, LoRA rank/alpha/dropout, batch size, epochs, ...). Trials run one after
// another on one loaded model (each trial re-initializes the adapters); each trains with early
// stopping on the validation split and reports its best validation value. Finished trials are
// appended to a JSON state file as they end, so an interrupted search resumes where it stopped.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import type { SearchOptions } from '../option-types.js';
import { Random } from '../data/random.js';
import { TunekitError } from '../errors.js';
import { parseOptions, type Same } from '../validate.js';

const Range = z.object({ min: z.number(), max: z.number(), log: z.boolean().default(false), integer: z.boolean().default(false) }).strict();
export const SearchOptionsSchema = z
  .object({
    strategy: z.enum(['grid', 'random', 'successive-halving']).default('random').describe('How configurations are chosen'),
    space: z.record(z.string(), z.union([z.array(z.union([z.number(), z.string(), z.boolean()])).min(1), Range]))
      .describe('Settings to search, by dotted path ("lr", "lora.r", "training.batchSize"): a list of values or a {min, max, log} range'),
    trials: z.number().int().min(1).default(8).describe('Random search: configurations tried; successive halving: configurations in the first rung'),
    seed: z.number().int().min(0).default(0).describe('Seed of the sampled configurations'),
    metric: z.enum(['loss', 'perplexity', 'accuracy', 'f1']).default('loss').describe('Validation metric compared'),
    mode: z.enum(['min', 'max']).optional().describe('Default: min for loss/perplexity, max for accuracy/f1'),
    budgetSteps: z.number().int().min(1).default(20).describe('Successive halving: optimizer steps of the first rung'),
    eta: z.number().int().min(2).default(3).describe('Successive halving: keep 1/eta of the configurations per rung, multiply the budget by eta'),
    stateFile: z.string().min(1).optional().describe('Where finished trials are recorded (and read back to resume); default: nowhere'),
  })
  .strict();
export type { SearchOptions };
// The schema accepts exactly the documented type (a compile-time check).
const schemaMatchesType: Same<z.input<typeof SearchOptionsSchema>, SearchOptions> = true;
void schemaMatchesType;

export type Params = Record<string, number | string | boolean>;

export interface Trial {
  id: string;
  params: Params;
  /** Optimizer steps allowed (successive halving), or null for the job's own length. */
  budget: number | null;
  value: number;
  steps: number;
  seconds: number;
}

export interface SearchResult {
  trials: Trial[];
  best: Trial;
  /** Trials read back from the state file rather than run. */
  resumed: number;
}

/** Runs one trial: train with these settings (and step budget), return the best validation value. */
export type Objective = (params: Params, budget: number | null) => Promise<{ value: number; steps: number }>;

function grid(space: Record<string, unknown[]>): Params[] {
  let out: Params[] = [{}];
  for (const [k, values] of Object.entries(space)) out = out.flatMap((p) => values.map((v) => ({ ...p, [k]: v as Params[string] })));
  return out;
}

function sample(space: z.output<typeof SearchOptionsSchema>['space'], r: Random): Params {
  const p: Params = {};
  for (const [k, v] of Object.entries(space)) {
    if (Array.isArray(v)) {
      p[k] = v[r.below(v.length)]!;
      continue;
    }
    const u = r.next();
    let x = v.log ? Math.exp(Math.log(v.min) + u * (Math.log(v.max) - Math.log(v.min))) : v.min + u * (v.max - v.min);
    if (v.integer) x = Math.round(x);
    p[k] = Number(x.toPrecision(6));
  }
  return p;
}

const idOf = (params: Params, budget: number | null) => JSON.stringify({ params: Object.fromEntries(Object.entries(params).sort()), budget });

/** Sets a dotted path ("lora.r") in a copy of a plain object. */
export function withParams<T extends Record<string, unknown>>(base: T, params: Params): T {
  const out = structuredClone(base) as Record<string, unknown>;
  for (const [path, value] of Object.entries(params)) {
    const keys = path.split('.');
    let node = out;
    for (const k of keys.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>;
    node[keys.at(-1)!] = value;
  }
  return out as T;
}

export async function searchHyperparameters(options: SearchOptions, objective: Objective, onTrial?: (t: Trial, resumed: boolean) => void): Promise<SearchResult> {
  const o = parseOptions(SearchOptionsSchema, options, 'search');
  const higher = (o.mode ?? (o.metric === 'accuracy' || o.metric === 'f1' ? 'max' : 'min')) === 'max';
  const better = (a: Trial, b: Trial) => (higher ? a.value > b.value : a.value < b.value);
  const done = new Map<string, Trial>();
  if (o.stateFile && existsSync(o.stateFile)) {
    try {
      for (const t of JSON.parse(await readFile(o.stateFile, 'utf8')).trials as Trial[]) done.set(t.id, t);
    } catch (e) {
      throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${o.stateFile}: not a search state file (${(e as Error).message})`);
    }
  }
  const trials: Trial[] = [];
  let resumed = 0;
  const save = async () => {
    if (!o.stateFile) return;
    await mkdir(dirname(o.stateFile), { recursive: true });
    const tmp = `${o.stateFile}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify({ options: o, trials: [...done.values()] }, null, 1) + '\n');
    await rename(tmp, o.stateFile);
  };
  const run = async (params: Params, budget: number | null): Promise<Trial> => {
    const id = idOf(params, budget);
    const old = done.get(id);
    if (old) {
      resumed++;
      trials.push(old);
      onTrial?.(old, true);
      return old;
    }
    const started = performance.now();
    const r = await objective(params, budget);
    const t: Trial = { id, params, budget, value: r.value, steps: r.steps, seconds: (performance.now() - started) / 1000 };
    done.set(id, t);
    trials.push(t);
    await save();
    onTrial?.(t, false);
    return t;
  };

  if (o.strategy === 'grid') {
    const lists = Object.fromEntries(Object.entries(o.space).map(([k, v]) => {
      if (!Array.isArray(v)) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a list of values for space.${k} in a grid search`);
      return [k, v];
    }));
    for (const p of grid(lists)) await run(p, null);
  } else {
    const r = new Random(o.seed, 77);
    const configs = Array.from({ length: o.trials }, () => sample(o.space, r));
    if (o.strategy === 'random') {
      for (const p of configs) await run(p, null);
    } else {
      let rung = configs, budget = o.budgetSteps;
      while (rung.length > 0) {
        const results: Trial[] = [];
        for (const p of rung) results.push(await run(p, budget));
        if (rung.length === 1) break;
        results.sort((a, b) => (better(a, b) ? -1 : better(b, a) ? 1 : 0));
        rung = results.slice(0, Math.max(1, Math.floor(rung.length / o.eta))).map((t) => t.params);
        budget *= o.eta;
      }
    }
  }
  if (trials.length === 0) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', 'The search space gave no configurations');
  // The best of the longest budget tried (successive halving compares like with like).
  const top = Math.max(...trials.map((t) => t.budget ?? Infinity));
  const finalists = trials.filter((t) => (t.budget ?? Infinity) === top && Number.isFinite(t.value));
  const best = (finalists.length ? finalists : trials).reduce((a, b) => (better(b, a) ? b : a));
  return { trials, best, resumed };
}
