// The Trainer's options, each documented where it is declared (as PEFT's LoraConfig does).
import { z } from 'zod';
import type { TrainerOptions } from '../option-types.js';
import { DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_EPS, DEFAULT_LR } from '../model/defaults.js';
import { expected, positiveInt, type Same } from '../validate.js';

export const EarlyStoppingOptions = z
  .object({
    patience: positiveInt().describe('Evaluations without improvement before training stops'),
    minDelta: z.number().min(0).default(0).describe('Smallest change that counts as an improvement'),
    metric: z.enum(['loss', 'perplexity', 'accuracy', 'f1']).default('loss').describe('Validation metric watched (accuracy and macro F1 for classifiers)'),
    mode: z.enum(['min', 'max']).optional().describe('Whether smaller or larger is better (default: min for loss and perplexity, max for accuracy and f1)'),
  })
  .strict();

export const DistributedOptions = z
  .object({
    zero: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(1)
      .describe('ZeRO stage when several ranks train: 0 all-reduces gradients and every rank keeps whole AdamW moments; 1 keeps each rank\'s shard of the moments only; 2 also reduces each layer\'s gradient to its owner during the backward, so each rank keeps only its shard of the gradient'),
  })
  .strict();

export const TrainerOptionsSchema = z
  .object({
    epochs: positiveInt().default(1).describe('Passes over the training split (unless maxSteps ends training first)'),
    maxSteps: positiveInt().optional().describe('Stop after this many optimizer steps (default: when the epochs end)'),
    batchSize: positiveInt().default(4).describe('Rows per micro-batch'),
    gradAccumulation: positiveInt().default(1).describe('Micro-batches per optimizer step; the loss is the mean over all their tokens'),
    lr: z.number(expected('positive number')).positive(expected('positive number')).default(DEFAULT_LR).describe('Peak learning rate'),
    weightDecay: z.number().min(0).default(0).describe('AdamW decoupled weight decay'),
    beta1: z.number().min(0).lt(1).default(DEFAULT_BETA1).describe('AdamW beta1'),
    beta2: z.number().min(0).lt(1).default(DEFAULT_BETA2).describe('AdamW beta2'),
    eps: z.number().positive().default(DEFAULT_EPS).describe('AdamW epsilon'),
    maxGradNorm: z.number().min(0).default(1).describe('Clip the global gradient norm to this (0: no clipping)'),
    schedule: z.enum(['constant', 'linear', 'cosine', 'slanted-triangular']).default('linear').describe('Learning-rate schedule'),
    warmupSteps: z.number().int().min(0).optional().describe('Linear warmup steps (constant, linear, cosine); default: warmupRatio, else 0'),
    warmupRatio: z.number().min(0).lt(1).optional().describe('Warmup as a share of all steps, when warmupSteps is not given (default 0)'),
    cutFraction: z.number().gt(0).lt(1).default(0.1).describe('Slanted triangular: share of steps spent increasing'),
    ratio: z.number().min(1).default(32).describe('Slanted triangular: peak rate / lowest rate'),
    discriminativeLr: z.number().gt(1).optional()
      .describe('ULMFiT discriminative rates: each lower layer group (embeddings, each layer, output/head) trains at the rate of the one above divided by this (2.6 in ULMFiT). Default: off, one rate for all'),
    gradualUnfreezing: z.boolean().default(false)
      .describe('ULMFiT gradual unfreezing: epoch 1 trains only the top group, each later epoch one more'),
    bf16: z.boolean().default(false).describe('bf16 GEMMs with fp32 accumulation (mixed precision)'),
    activationCheckpointing: z.boolean().default(false).describe('Recompute each layer in the backward to save memory'),
    maxLength: positiveInt().default(1024).describe('Longest row in tokens (the packed row length with packing)'),
    packing: z.boolean().default(false).describe('Lay short examples end to end in rows of maxLength (attention stays within each)'),
    evalEvery: positiveInt().optional().describe('Evaluate on the validation split every N steps (default: at the end of each epoch)'),
    evalBatchSize: positiveInt().optional().describe('Rows per evaluation batch (default: batchSize)'),
    earlyStopping: EarlyStoppingOptions.optional().describe('Stop when the validation metric stops improving (default: off, train to the end)'),
    restoreBest: z.boolean().default(true).describe('At the end, put back the weights of the best validation evaluation'),
    outputDir: z.string().min(1).optional().describe('Where checkpoints and the best weights go (default: none; the best weights are then kept in memory)'),
    checkpointEvery: positiveInt().optional().describe('Write a checkpoint every N steps (needs outputDir; default: only at the end, and when stopped)'),
    keepCheckpoints: positiveInt().default(2).describe('Checkpoints kept (the newest; the best is kept apart)'),
    logFile: z.string().min(1).optional().describe('Append every step and evaluation to this file as a JSON line (default: none)'),
    distributed: DistributedOptions.optional()
      .describe('Data parallelism, when a launcher (mpirun, srun) started several ranks: each rank takes batchSize rows of every global micro-batch of batchSize × ranks rows (default: ZeRO stage 1)'),
    resume: z
      .union([z.boolean(), z.literal('auto'), z.string()])
      .default(false)
      .describe("true: continue from the newest checkpoint in outputDir (an error when there is none); 'auto': from it when there is one, else start fresh; a path: from that checkpoint"),
  })
  .strict();

export type { TrainerOptions };
// The schema accepts exactly the documented type (a compile-time check).
const schemaMatchesType: Same<z.input<typeof TrainerOptionsSchema>, TrainerOptions> = true;
void schemaMatchesType;
export type TrainerConfig = z.output<typeof TrainerOptionsSchema>;
