#!/usr/bin/env node
// The tunekit command line: train, eval, generate, export, search (SPECS below declares each
// command's arguments and flags once; `tunekit <command> --help` prints them).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TunekitError } from '../errors.js';
import { saveGgufLora } from '../export/gguf-lora.js';
import { saveMergedModel } from '../export/merge.js';
import { loadPeftAdapter } from '../export/peft-load.js';
import { loadModel } from '../model/load.js';
import { consolidateCheckpoint } from '../train/checkpoint.js';
import { evaluate } from '../train/trainer.js';
import { jobLoadOptions, readJob } from './config.js';
import { commandHelp, nearest, parseCommand, usageLine, type Command, type FlagValues } from './flags.js';
import { serveDashboard } from './dashboard/server.js';
import { duration, ProgressBar } from './progress.js';
import { jobTitle, loadJobData, runJob } from './run.js';
import { runSearch } from './search.js';
import { processGroup } from '../dist/group.js';

const SPECS: Record<string, Command> = {
  train: {
    args: '<config.json|config.yaml>',
    summary: 'Fine-tune as the config says: progress, validation, checkpoints, metrics, exports and an HTML report in its output folder. Ctrl-C (SIGTERM, or SIGUSR1: what mpirun forwards) stops at a step boundary with a checkpoint. Under mpirun or srun every rank trains its share of each batch.',
    flags: {
      resume: { type: 'boolean', default: false, description: 'continue the run in the output folder from its newest checkpoint' },
      overwrite: { type: 'boolean', default: false, description: 'delete the run in the output folder (checkpoints, metrics) and start over' },
      dashboard: { type: 'boolean', default: false, description: 'serve a live dashboard of the run on 127.0.0.1 (the address is printed) while it trains' },
      'dashboard-port': { type: 'number', value: 'PORT', default: 0, description: 'the dashboard\'s port; 0 takes any free one' },
    },
  },
  dashboard: {
    args: '<output folder|metrics.jsonl>',
    summary: 'Serve the live dashboard of a run (training now in another process, or finished) on 127.0.0.1 until Ctrl-C: loss, validation, learning rate, gradient norm, throughput and memory, updated as steps arrive.',
    flags: { port: { type: 'number', value: 'PORT', default: 0, description: 'the port; 0 takes any free one' } },
  },
  eval: {
    args: '<config>',
    summary: "Validation, test (and evalSets) loss and perplexity of the config's model, with its trained adapter when there is one.",
    flags: { adapter: { type: 'string', value: 'DIR', description: "a PEFT adapter folder (default: the output folder's adapter/ when present)" } },
  },
  generate: {
    args: '<model>',
    summary: 'Generate text from a prompt with a model (a GGUF file or a Hugging Face folder), optionally with a PEFT adapter.',
    flags: {
      prompt: { type: 'string', value: 'TEXT', description: 'the prompt (required)' },
      adapter: { type: 'string', value: 'DIR', description: 'a PEFT adapter folder to apply' },
      chat: { type: 'boolean', default: false, description: "wrap the prompt as a user message through the model's chat template" },
      'max-tokens': { type: 'number', value: 'N', default: 128, description: 'most new tokens' },
      temperature: { type: 'number', value: 'T', default: 0, description: '0 is greedy decoding; above 0 samples' },
      'top-p': { type: 'number', value: 'P', description: 'sample among the most likely tokens up to probability P' },
      'top-k': { type: 'number', value: 'K', description: 'sample among the K most likely tokens' },
      seed: { type: 'number', value: 'S', description: 'seed of the sampler (default 0)' },
    },
  },
  export: {
    args: '<model>',
    summary: 'Turn a PEFT adapter into a GGUF LoRA adapter (for llama.cpp) and/or merge it into the model.',
    flags: {
      adapter: { type: 'string', value: 'DIR', description: 'the PEFT adapter folder (required)' },
      gguf: { type: 'string', value: 'FILE', description: 'write a GGUF LoRA adapter here' },
      merged: { type: 'string', value: 'DIR', description: 'write the merged model (a Hugging Face folder) here' },
    },
  },
  consolidate: {
    args: '<checkpoint>',
    summary: 'Turn a checkpoint written by several ranks (one optimizer shard each) into a single-process one. Not needed to resume: a sharded checkpoint resumes on any number of ranks as it is.',
    flags: { out: { type: 'string', value: 'DIR', description: 'write the consolidated checkpoint here (default: in place)' } },
  },
  search: {
    args: '<config>',
    summary: 'Hyperparameter search as the config\'s "search" section says (strategy, space, trials, metric); resumes where it stopped and writes best.json.',
    flags: {},
  },
};

const USAGE = `Usage:\n${Object.entries(SPECS).map(([n, c]) => `  ${usageLine(n, c)}`).join('\n')}\n  tunekit help [command]\n\n\`tunekit <command> --help\` describes a command and its flags.`;

async function train(positionals: string[], values: FlagValues): Promise<void> {
  if (positionals.length !== 1) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected one config file\n${USAGE}`);
  const job = await readJob(positionals[0]!);
  const bar = new ProgressBar();
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    bar.message('stopping at the next step boundary and writing a checkpoint (Ctrl-C again to quit at once)');
    controller.abort();
    process.once(signal, () => process.exit(130));
  };
  // mpirun kills the ranks shortly after it forwards SIGINT or SIGTERM; SIGUSR1 it forwards alone
  // (kill -USR1 <mpirun's pid> stops a data-parallel run with a checkpoint).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGUSR1'] as const) process.once(signal, () => stop(signal));
  const lead = processGroup().rank === 0;
  if (!lead) bar.quiet();
  const board = values.dashboard && lead ? await serveDashboard(join(job.output, 'metrics.jsonl'), { port: values['dashboard-port'] as number, title: jobTitle(job) }) : null;
  if (board) bar.message(`dashboard: ${board.url}`);
  let r;
  try {
    r = await runJob(job, { resume: values.resume === true, overwrite: values.overwrite === true, signal: controller.signal, onStep: (e) => bar.step(e), log: (m) => bar.message(m) });
  } finally {
    await board?.close();
  }
  if (r.result.stopReason === 'aborted') bar.message(`stopped; resume with: tunekit train ${positionals[0]} --resume`);
  if (r.result.test) bar.message(`test: loss ${r.result.test.loss.toFixed(4)}, perplexity ${r.result.test.perplexity.toFixed(2)}`);
  for (const [k, v] of Object.entries(r.paths)) bar.message(`${k.padEnd(12)} ${v}`);
  bar.message(`done in ${duration(r.result.seconds)}`);
}

async function dashboardCommand(positionals: string[], values: FlagValues): Promise<void> {
  if (positionals.length !== 1) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a run's output folder (or its metrics.jsonl)\n${USAGE}`);
  const target = positionals[0]!;
  const file = target.endsWith('.jsonl') ? target : join(target, 'metrics.jsonl');
  if (!existsSync(file)) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${file}: no metrics to show yet (expected a run's output folder, or its metrics.jsonl); it is shown once the run starts writing it`);
  const board = await serveDashboard(file, { port: values.port as number, title: `tunekit: ${target}` });
  console.log(`dashboard of ${file}: ${board.url} (Ctrl-C to stop)`);
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  await board.close();
}

async function evalCommand(positionals: string[], values: FlagValues): Promise<void> {
  if (positionals.length !== 1) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected one config file\n${USAGE}`);
  const job = await readJob(positionals[0]!);
  const model = await loadModel(job.model, jobLoadOptions(job));
  const adapter = (values.adapter as string | undefined) ?? (existsSync(join(job.output, 'adapter')) ? join(job.output, 'adapter') : undefined);
  if (adapter) await loadPeftAdapter(model, adapter);
  const { dataset, evalSets } = await loadJobData(job, model);
  const t = job.training;
  const splits = { validation: dataset.validation, test: dataset.test, ...evalSets };
  console.log(`model ${job.model}${adapter ? ` + adapter ${adapter}` : ''}`);
  for (const [name, split] of Object.entries(splits)) {
    if (!split) continue;
    const r = await evaluate(model, split, { batchSize: t.evalBatchSize ?? t.batchSize, maxLength: t.maxLength, packing: t.packing, bf16: t.bf16 });
    console.log(`${name.padEnd(12)} loss ${r.loss.toFixed(4)}  perplexity ${r.perplexity.toFixed(2)}  (${r.tokens} tokens)`);
  }
}

async function generateCommand(positionals: string[], values: FlagValues): Promise<void> {
  if (positionals.length !== 1 || values.prompt === undefined) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a model and --prompt\n${USAGE}`);
  const model = await loadModel(positionals[0]!);
  if (values.adapter) await loadPeftAdapter(model, values.adapter as string);
  const text = values.prompt as string;
  const prompt = values.chat ? model.tokenizer!.applyChatTemplate([{ role: 'user', content: text }], { addGenerationPrompt: true }) : text;
  const num = (v: unknown) => v as number | undefined;
  let tokens = 0, shown = '';
  for await (const piece of model.generate(prompt, {
    maxTokens: num(values['max-tokens']), temperature: num(values.temperature), topP: num(values['top-p']), topK: num(values['top-k']), seed: num(values.seed),
  })) {
    tokens++, (shown += piece.text);
    process.stdout.write(piece.text);
  }
  process.stdout.write('\n');
  // Say why nothing shows rather than leave an empty line.
  if (tokens === 0) console.error('tunekit: nothing was generated: the first token the model chose ends the text (its end-of-sequence token)');
  else if (shown.trim() === '') console.error(`tunekit: ${tokens} tokens were generated, none with visible text (special tokens or whitespace)`);
}

async function exportCommand(positionals: string[], values: FlagValues): Promise<void> {
  if (positionals.length !== 1 || !values.adapter || (!values.gguf && !values.merged)) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a model, --adapter and --gguf and/or --merged\n${USAGE}`);
  }
  const model = await loadModel(positionals[0]!);
  await loadPeftAdapter(model, values.adapter as string);
  if (values.gguf) {
    await saveGgufLora(model, values.gguf as string);
    console.log(`GGUF LoRA adapter: ${values.gguf}`);
  }
  if (values.merged) {
    await saveMergedModel(model, values.merged as string);
    console.log(`merged model: ${values.merged}`);
  }
}

async function consolidateCommand(positionals: string[], values: FlagValues): Promise<void> {
  if (positionals.length !== 1) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected one checkpoint folder\n${USAGE}`);
  const r = await consolidateCheckpoint(positionals[0]!, (values.out as string | undefined) ?? positionals[0]!);
  console.log(r.shards ? `${r.dir}: the moments of ${r.shards} shards in one optimizer.safetensors` : `${r.dir}: already a single-process checkpoint (rewritten as one)`);
}

async function searchCommand(positionals: string[]): Promise<void> {
  if (positionals.length !== 1) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected one config file\n${USAGE}`);
  const job = await readJob(positionals[0]!);
  if (!job.search) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${positionals[0]}: expected a "search" section (strategy, space, ...)`);
  const r = await runSearch(job, job.search, (m) => console.error(m));
  const keys = Object.keys(r.best.params);
  console.log(['value', 'steps', 'seconds', ...keys].join('\t'));
  for (const t of r.trials) console.log([t.value.toFixed(4), t.steps, t.seconds.toFixed(1), ...keys.map((k) => t.params[k])].join('\t'));
  console.log(`best: ${JSON.stringify(r.best.params)} (${r.best.value.toFixed(4)}); ${r.resumed} trials resumed from ${r.files.results}`);
  console.log(`best config: ${r.files.best} (tunekit train ${r.files.best})`);
}

const commands: Record<string, (positionals: string[], values: FlagValues) => Promise<void>> = {
  train, dashboard: dashboardCommand, eval: evalCommand, generate: generateCommand, export: exportCommand, consolidate: consolidateCommand, search: searchCommand,
};

export async function main(argv = process.argv.slice(2)): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    const about = command === 'help' ? rest[0] : undefined;
    if (about && !SPECS[about]) {
      console.error(`Unknown command ${about}\n${USAGE}`);
      return 1;
    }
    console.log(about ? commandHelp(about, SPECS[about]!) : USAGE);
    return command ? 0 : 1;
  }
  const run = commands[command];
  if (!run) {
    const guess = nearest(command, Object.keys(commands));
    console.error(`Unknown command ${command}${guess ? ` (did you mean ${guess}?)` : ''}\n${USAGE}`);
    return 1;
  }
  try {
    const parsed = parseCommand(command, SPECS[command]!, rest);
    if (parsed) await run(parsed.positionals, parsed.values);
    return 0;
  } catch (e) {
    console.error(e instanceof TunekitError ? `tunekit: ${(e as Error).message}` : e);
    return 1;
  }
}

main().then((code) => process.exit(code));
