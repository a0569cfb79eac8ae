// Option validation with zod, reported in sharp's style:
//   "Expected integer >= 1 for threads but received 0".
// Schemas document each option with .describe(); this module only turns zod's issues into words.
import { z } from 'zod';
import { TunekitError } from './errors.js';

/** A value for a message: short, and safe for any value (a deeply nested one overflows JSON.stringify and String). */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? value.slice(0, 77) + '...' : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === undefined || value === null || typeof value !== 'object') return String(value);
  try {
    const s = JSON.stringify(value);
    return s.length > 80 ? s.slice(0, 77) + '...' : s;
  } catch {
    // Nested too deep for JSON.stringify (or cyclic): say what it is.
    return Array.isArray(value) ? 'an array nested too deep to show' : 'an object nested too deep to show';
  }
}

// Schemas can name their expectation in words: z.number().int(expected('positive integer')).
const WORDS = 'expected:';
export const expected = (words: string) => ({ message: WORDS + words });
/** A positive integer option, reported as "Expected positive integer for <name> but received 0". */
export const positiveInt = () => z.number(expected('positive integer')).int(expected('positive integer')).min(1, expected('positive integer'));

function expectation(issue: z.core.$ZodIssue): string {
  if (issue.message.startsWith(WORDS)) return issue.message.slice(WORDS.length);
  switch (issue.code) {
    case 'invalid_type':
      return issue.expected;
    case 'too_small': {
      const op = issue.inclusive === false ? '>' : '>=';
      return issue.origin === 'array' || issue.origin === 'string'
        ? `${issue.origin} of length ${op} ${issue.minimum}`
        : `${issue.origin} ${op} ${issue.minimum}`;
    }
    case 'too_big': {
      const op = issue.inclusive === false ? '<' : '<=';
      return issue.origin === 'array' || issue.origin === 'string'
        ? `${issue.origin} of length ${op} ${issue.maximum}`
        : `${issue.origin} ${op} ${issue.maximum}`;
    }
    case 'invalid_value':
      return `one of ${issue.values.map(show).join(', ')}`;
    case 'invalid_format':
      return `${issue.format} string`;
    case 'not_multiple_of':
      return `multiple of ${issue.divisor}`;
    default:
      return issue.message;
  }
}

// Edit distance, for "did you mean".
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

/** The closest of `known` to `typed`, when it is close enough to be a typo. */
export function nearest(typed: string, known: string[]): string | undefined {
  let best: string | undefined, bestD = Infinity;
  for (const k of known) {
    const dist = distance(typed.toLowerCase(), k.toLowerCase());
    if (dist < bestD) [best, bestD] = [k, dist];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(typed.length / 3)) ? best : undefined;
}

/**
 * What users of transformers' TrainingArguments and PEFT's LoraConfig type, and where tunekit
 * has it (a key beside the unknown one, or a path from the top of the options).
 */
const SPELLINGS: Record<string, string> = {
  learning_rate: 'lr', per_device_train_batch_size: 'batchSize', train_batch_size: 'batchSize', batch_size: 'batchSize',
  per_device_eval_batch_size: 'evalBatchSize', gradient_accumulation_steps: 'gradAccumulation', num_train_epochs: 'epochs',
  max_steps: 'maxSteps', weight_decay: 'weightDecay', warmup_steps: 'warmupSteps', warmup_ratio: 'warmupRatio',
  max_grad_norm: 'maxGradNorm', lr_scheduler_type: 'schedule', adam_beta1: 'beta1', adam_beta2: 'beta2', adam_epsilon: 'eps',
  gradient_checkpointing: 'activationCheckpointing', eval_steps: 'evalEvery', save_steps: 'checkpointEvery',
  save_total_limit: 'keepCheckpoints', output_dir: 'outputDir', resume_from_checkpoint: 'resume', max_seq_length: 'maxLength',
  max_length: 'maxLength', load_best_model_at_end: 'restoreBest', early_stopping_patience: 'earlyStopping.patience',
  lora_alpha: 'lora.alpha', lora_dropout: 'lora.dropout', lora_r: 'lora.r', target_modules: 'lora.targets', use_rslora: 'lora.rslora',
  max_new_tokens: 'maxTokens', top_p: 'topP', top_k: 'topK',
};

type AnySchema = { def?: { type?: string; innerType?: AnySchema; in?: AnySchema; shape?: Record<string, AnySchema> }; shape?: Record<string, AnySchema> };

/** The keys of the object schema at `path` (through optional, default, pipe wrappers), if it is one. */
function keysAt(schema: unknown, path: PropertyKey[]): string[] | undefined {
  let s = schema as AnySchema | undefined;
  const unwrap = () => {
    for (let guard = 0; s && guard < 16; guard++) {
      const d = s.def;
      if (d?.innerType) s = d.innerType;
      else if (d?.type === 'pipe' && d.in) s = d.in;
      else break;
    }
  };
  unwrap();
  for (const key of path) {
    const shape = s?.shape ?? s?.def?.shape;
    s = shape?.[String(key)];
    unwrap();
  }
  const shape = s?.shape ?? s?.def?.shape;
  return shape ? Object.keys(shape) : undefined;
}

function fieldOf(path: PropertyKey[], what: string): string {
  if (!path.length) return what;
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i ? `.${String(k)}` : String(k))).join('');
}

/** A hint for an unknown key: the tunekit spelling of an HF/PEFT name, else the nearest known key. */
function suggestion(key: string, known: string[] | undefined, schema: unknown): string {
  const spelled = SPELLINGS[key];
  if (spelled) {
    const head = spelled.split('.')[0]!;
    if (known?.includes(spelled) || !spelled.includes('.') || keysAt(schema, [])?.includes(head)) return ` (did you mean ${spelled}?)`;
  }
  const camel = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  if (known?.includes(camel)) return ` (did you mean ${camel}?)`;
  const close = known ? nearest(key, known) : undefined;
  if (close) return ` (did you mean ${close}?)`;
  return known && known.length <= 40 ? ` (known: ${known.join(', ')})` : '';
}

/** The first issue to report: inside a union, the branch that got furthest (deepest path). */
function reportable(issue: z.core.$ZodIssue): { issue: z.core.$ZodIssue; path: PropertyKey[]; alternatives?: string } {
  if (issue.code !== 'invalid_union' || !issue.errors?.length) return { issue, path: issue.path };
  const firsts = issue.errors.map((b) => b[0]).filter((x): x is z.core.$ZodIssue => x !== undefined);
  const deepest = firsts.reduce((a, b) => (b.path.length > a.path.length ? b : a), firsts[0]!);
  if (deepest.path.length > 0) {
    const inner = reportable(deepest);
    return { ...inner, path: [...issue.path, ...inner.path] };
  }
  return { issue, path: issue.path, alternatives: firsts.map((x) => expectation(x)).join(' or ') };
}

/** Parses `value` with `schema` or throws TunekitError(ERR_TUNEKIT_INVALID_ARGUMENT) naming the field. */
export function parseOptions<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const { issue, path, alternatives } = reportable(result.error.issues[0]!);
  let message: string;
  if (issue.code === 'unrecognized_keys') {
    const known = keysAt(schema, path);
    const where = path.length ? ` in ${fieldOf(path, what)}` : '';
    message = issue.keys.length > 1
      ? `Unknown options ${issue.keys.join(', ')}${where} for ${what}${suggestion(issue.keys[0]!, known, schema)}`
      : `Unknown option ${issue.keys[0]}${where} for ${what}${suggestion(issue.keys[0]!, known, schema)}`;
  } else {
    message = `Expected ${alternatives ?? expectation(issue)} for ${fieldOf(path, what)} but received ${show(issue.input)}`;
  }
  throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', message);
}

/**
 * True when A and B are the same type, optional fields included (mutual assignability would let a
 * schema gain an optional field its documented type lacks): a compile-time check that a schema
 * accepts exactly the type it documents.
 */
export type Same<A, B> = (<T>() => T extends Simplify<A> ? 1 : 2) extends (<T>() => T extends Simplify<B> ? 1 : 2) ? true : never;
type Simplify<T> = T extends object ? (T extends (...args: never[]) => unknown ? T : { [K in keyof T]: Simplify<T[K]> }) : T;
