// Each command's flags declared once: parsed with node:util's parseArgs, documented by the same
// declaration in `tunekit <command> --help` (and `tunekit help <command>`), and refused with a
// message that names the flag, the text typed and the flags the command has.
import { parseArgs } from 'node:util';
import { TunekitError } from '../errors.js';
import { nearest } from '../validate.js';

export { nearest };

export interface Flag {
  type: 'boolean' | 'string' | 'number';
  /** What the flag's value stands for in the usage line (string and number flags). */
  value?: string;
  default?: string | number | boolean;
  description: string;
}

export interface Command {
  /** The positional arguments, as the usage line shows them. */
  args: string;
  summary: string;
  flags: Record<string, Flag>;
}

export type FlagValues = Record<string, string | number | boolean | undefined>;

/** The usage line of a command. */
export function usageLine(name: string, c: Command): string {
  const flags = Object.entries(c.flags).map(([f, d]) => (d.type === 'boolean' ? `[--${f}]` : `[--${f} ${d.value ?? 'X'}]`));
  return `tunekit ${name} ${c.args}${flags.length ? ' ' + flags.join(' ') : ''}`;
}

/** `tunekit <name> --help`: the usage, what the command does, and every flag with its default. */
export function commandHelp(name: string, c: Command): string {
  const rows = Object.entries(c.flags).map(([f, d]) => [`--${f}${d.type === 'boolean' ? '' : ` ${d.value ?? 'X'}`}`, `${d.description}${d.default !== undefined && d.default !== false ? ` (default ${d.default})` : ''}`]);
  rows.push(['-h, --help', 'show this help']);
  const width = Math.max(...rows.map((r) => r[0]!.length));
  return `Usage: ${usageLine(name, c)}\n\n${c.summary}\n\nFlags:\n${rows.map(([a, b]) => `  ${a!.padEnd(width)}  ${b}`).join('\n')}`;
}

/**
 * Parses a command's arguments; null when --help was asked (the help is printed). Unknown flags,
 * missing values and numbers that are not numbers are TunekitErrors naming the flag and the text.
 */
export function parseCommand(name: string, c: Command, args: string[]): { positionals: string[]; values: FlagValues } | null {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(commandHelp(name, c));
    return null;
  }
  const options = Object.fromEntries(
    Object.entries(c.flags).map(([f, d]) => [f, { type: d.type === 'boolean' ? ('boolean' as const) : ('string' as const), ...(d.type === 'boolean' && d.default !== undefined ? { default: d.default as boolean } : {}) }]),
  );
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: typeof options }>>;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options });
  } catch (e) {
    const code = (e as { code?: string }).code, flag = /'(-[^']*)'/.exec((e as Error).message)?.[1];
    const list = [...Object.keys(c.flags).map((f) => `--${f}`), '--help'].join(', ');
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag) {
      const guess = nearest(flag.replace(/^-+/, ''), Object.keys(c.flags));
      throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Unknown flag ${flag} for tunekit ${name}${guess ? ` (did you mean --${guess}?)` : ''}; its flags: ${list}`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const f = /--([\w-]+)/.exec((e as Error).message)?.[1];
      const d = f ? c.flags[f] : undefined;
      throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', d && d.type !== 'boolean' ? `Expected a value after --${f} (${d.value ?? 'X'}: ${d.description})` : `--${f} takes no value`);
    }
    throw e;
  }
  const values: FlagValues = {};
  for (const [f, d] of Object.entries(c.flags)) {
    const v = (parsed.values as Record<string, string | boolean | undefined>)[f] ?? d.default;
    if (d.type === 'number' && typeof v === 'string') {
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n)) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a number for --${f} but received "${v}"`);
      values[f] = n;
    } else {
      values[f] = v;
    }
  }
  return { positionals: parsed.positionals, values };
}
