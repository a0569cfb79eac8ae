// The job file of `tunekit train config.json|config.yaml`: model, method, data, training and
// export settings in one document, validated with the same schemas the API uses.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DatasetOptionsSchema } from '../data/dataset.js';
import { TunekitError } from '../errors.js';
import { DEFAULT_LORA_ALPHA, DEFAULT_LORA_DROPOUT, DEFAULT_LORA_RANK } from '../model/defaults.js';
import { LoadOptionsSchema, type LoadOptions } from '../model/load.js';
import { SearchOptionsSchema } from '../search/search.js';
import { TrainerOptionsSchema } from '../train/options.js';
import { parseOptions } from '../validate.js';

const Lora = z
  .object({
    r: z.number().int().min(1).default(DEFAULT_LORA_RANK).describe('LoRA rank'),
    alpha: z.number().positive().default(DEFAULT_LORA_ALPHA).describe('LoRA alpha (scale alpha / r)'),
    rslora: z.boolean().default(false).describe('Scale by alpha / sqrt(r)'),
    dropout: z.number().min(0).lt(1).default(DEFAULT_LORA_DROPOUT).describe('LoRA dropout'),
    targets: z.union([z.array(z.enum(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'qkv_proj', 'gate_up_proj'])).min(1), z.literal('auto')]).optional()
      .describe('Projections to adapt (default: all of the model\'s: the seven, or Phi-3\'s qkv_proj, o_proj, gate_up_proj, down_proj); "auto": the top modules by gradient-based importance on the training data'),
    autoTargets: z.number().int().min(1).max(7).default(3).describe('How many modules "auto" picks'),
    layers: z.array(z.number().int().min(0)).optional().describe('Layers to adapt (default: all)'),
    seed: z.number().int().min(0).default(0).describe('Seed of the A initialization'),
  })
  .strict();

export const JobConfig = z
  .object({
    model: z.string().min(1).describe('A GGUF file or a Hugging Face folder'),
    method: z.enum(['lora', 'qlora', 'full']).default('lora').describe('lora; qlora (NF4 base + LoRA); full fine-tuning'),
    quantize: z.enum(['nf4', 'bf16', 'q8_0']).optional().describe('Store the base projections in this format (qlora implies nf4)'),
    device: LoadOptionsSchema.shape.device,
    lora: Lora.default(Lora.parse({})).describe('LoRA adapters (methods lora and qlora)'),
    data: DatasetOptionsSchema.extend({
      path: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).describe('Data file(s) or folder'),
      evalSets: z.record(z.string(), z.string()).optional().describe('Extra evaluation sets by name (e.g. general text, to watch forgetting)'),
    }).describe('The training data and how it becomes examples (loadDataset\'s options)'),
    training: TrainerOptionsSchema.omit({ outputDir: true, logFile: true }).default(TrainerOptionsSchema.parse({}))
      .describe('The Trainer\'s options (checkpoints and metrics go to the output folder)'),
    output: z.string().min(1).default('tunekit-output').describe('Folder for checkpoints, metrics, report and exports'),
    export: z
      .object({
        peft: z.boolean().default(true).describe('PEFT adapter folder (output/adapter)'),
        gguf: z.boolean().default(false).describe('GGUF LoRA adapter for llama.cpp (output/adapter.gguf)'),
        merged: z.boolean().default(false).describe('Hugging Face folder with the adapters merged (output/merged)'),
      })
      .strict()
      .default({ peft: true, gguf: false, merged: false })
      .describe('What is written to the output folder after training'),
    threads: z.number().int().min(1).optional().describe('Kernel threads (default: all cores)'),
    search: SearchOptionsSchema.omit({ stateFile: true }).optional().describe('What `tunekit search` explores'),
  })
  .strict();

export type Job = z.output<typeof JobConfig>;

/** loadModel's options for a job: qlora stores the base as NF4; the device as the job says. */
export function jobLoadOptions(job: Job): LoadOptions {
  return { quantize: job.method === 'qlora' ? 'nf4' : job.quantize, ...(job.device ? { device: job.device } : {}) };
}

/** Reads and validates a job file; relative paths in it are relative to the file. */
export async function readJob(file: string): Promise<Job> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a config file at ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${file}: not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'} (${(e as Error).message})`);
  }
  let job: Job;
  try {
    job = parseOptions(JobConfig, raw, 'the config');
  } catch (e) {
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `${file}: ${(e as Error).message}`);
  }
  const base = dirname(resolve(file));
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  job.model = at(job.model);
  job.output = at(job.output);
  job.data.path = Array.isArray(job.data.path) ? job.data.path.map(at) : at(job.data.path);
  if (job.data.evalSets) job.data.evalSets = Object.fromEntries(Object.entries(job.data.evalSets).map(([k, v]) => [k, at(v)]));
  return job;
}
