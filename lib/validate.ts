// Option validation with zod, reported in sharp's style:
//   "Expected integer >= 1 for threads but received 0".
// Schemas document each option with .describe(); this module only turns zod's issues into words.
import { z } from 'zod';
import { TunekitError } from './errors.js';

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === undefined || value === null || typeof value !== 'object') return String(value);
  try {
    const s = JSON.stringify(value);
    return s.length > 80 ? s.slice(0, 77) + '...' : s;
  } catch {
    return Object.prototype.toString.call(value);
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

/** Parses `value` with `schema` or throws TunekitError(ERR_TUNEKIT_INVALID_ARGUMENT) naming the field. */
export function parseOptions<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.length ? issue.path.join('.') : what;
  const message =
    issue.code === 'unrecognized_keys'
      ? `Unknown option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')} for ${what}`
      : `Expected ${expectation(issue)} for ${field} but received ${show(issue.input)}`;
  throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', message);
}
