#!/usr/bin/env node
// The tunekit command line:
//   tunekit train <config.json|yaml> [--resume | --overwrite]  fine-tune as the config says (Ctrl-C stops with a checkpoint)
//   tunekit eval <config> [--adapter DIR]             validation/test loss and perplexity
//   tunekit generate <model> [--adapter DIR] --prompt TEXT [--chat] [--max-tokens N] [--temperature T]
//   tunekit export <model> --adapter DIR [--gguf FILE] [--merged DIR]
//   tunekit search <config>                          hyperparameter search; resumes where it stopped
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TunekitError } from '../errors.js';
import { saveGgufLora } from '../export/gguf-lora.js';
import { saveMergedModel } from '../export/merge.js';
import { loadPeftAdapter } from '../export/peft-load.js';
import { loadModel } from '../model/load.js';
import { evaluate } from '../train/trainer.js';
import { readJob } from './config.js';
import { duration, ProgressBar } from './progress.js';
import { loadJobData, runJob } from './run.js';
import { runSearch } from './search.js';

const USAGE = `Usage:
  tunekit train <config.json|config.yaml> [--resume | --overwrite]
  tunekit eval <config> [--adapter DIR]
  tunekit generate <model> [--adapter DIR] --prompt TEXT [--chat] [--max-tokens N] [--temperature T] [--top-p P] [--top-k K]
  tunekit export <model> --adapter DIR [--gguf FILE] [--merged DIR]
  tunekit search <config>     (the config's "search" section: strategy, space, trials, metric)`;

async function train(args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args, allowPositionals: true, options: { resume: { type: 'boolean', default: false }, overwrite: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected one config file\n${USAGE}`);
  const job = await readJob(positionals[0]!);
  const bar = new ProgressBar();
  const controller = new AbortController();
  process.once('SIGINT', () => {
    bar.message('stopping at the next step boundary and writing a checkpoint (Ctrl-C again to quit at once)');
    controller.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  const r = await runJob(job, { resume: values.resume, overwrite: values.overwrite, signal: controller.signal, onStep: (e) => bar.step(e), log: (m) => bar.message(m) });
  if (r.result.stopReason === 'aborted') bar.message(`stopped; resume with: tunekit train ${positionals[0]} --resume`);
  if (r.result.test) bar.message(`test: loss ${r.result.test.loss.toFixed(4)}, perplexity ${r.result.test.perplexity.toFixed(2)}`);
  for (const [k, v] of Object.entries(r.paths)) bar.message(`${k.padEnd(12)} ${v}`);
  bar.message(`done in ${duration(r.result.seconds)}`);
}

async function evalCommand(args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { adapter: { type: 'string' } } });
  if (positionals.length !== 1) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected one config file\n${USAGE}`);
  const job = await readJob(positionals[0]!);
  const model = await loadModel(job.model, { quantize: job.method === 'qlora' ? 'nf4' : job.quantize });
  const adapter = values.adapter ?? (existsSync(join(job.output, 'adapter')) ? join(job.output, 'adapter') : undefined);
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

async function generateCommand(args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args, allowPositionals: true,
    options: {
      adapter: { type: 'string' }, prompt: { type: 'string' }, chat: { type: 'boolean', default: false },
      'max-tokens': { type: 'string', default: '128' }, temperature: { type: 'string', default: '0' },
      'top-p': { type: 'string' }, 'top-k': { type: 'string' }, seed: { type: 'string' },
    },
  });
  if (positionals.length !== 1 || values.prompt === undefined) throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a model and --prompt\n${USAGE}`);
  const model = await loadModel(positionals[0]!);
  if (values.adapter) await loadPeftAdapter(model, values.adapter);
  const prompt = values.chat ? model.tokenizer!.applyChatTemplate([{ role: 'user', content: values.prompt }], { addGenerationPrompt: true }) : values.prompt;
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  for await (const piece of model.generate(prompt, {
    maxTokens: num(values['max-tokens']), temperature: num(values.temperature), topP: num(values['top-p']), topK: num(values['top-k']), seed: num(values.seed),
  })) process.stdout.write(piece.text);
  process.stdout.write('\n');
}

async function exportCommand(args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { adapter: { type: 'string' }, gguf: { type: 'string' }, merged: { type: 'string' } } });
  if (positionals.length !== 1 || !values.adapter || (!values.gguf && !values.merged)) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a model, --adapter and --gguf and/or --merged\n${USAGE}`);
  }
  const model = await loadModel(positionals[0]!);
  await loadPeftAdapter(model, values.adapter);
  if (values.gguf) {
    await saveGgufLora(model, values.gguf);
    console.log(`GGUF LoRA adapter: ${values.gguf}`);
  }
  if (values.merged) {
    await saveMergedModel(model, values.merged);
    console.log(`merged model: ${values.merged}`);
  }
}

async function searchCommand(args: string[]): Promise<void> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
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

const commands: Record<string, (args: string[]) => Promise<void>> = { train, eval: evalCommand, generate: generateCommand, export: exportCommand, search: searchCommand };

export async function main(argv = process.argv.slice(2)): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command ? 0 : 1;
  }
  const run = commands[command];
  if (!run) {
    console.error(`Unknown command ${command}\n${USAGE}`);
    return 1;
  }
  try {
    await run(rest);
    return 0;
  } catch (e) {
    console.error(e instanceof TunekitError || (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? `tunekit: ${(e as Error).message}` : e);
    return 1;
  }
}

main().then((code) => process.exit(code));
