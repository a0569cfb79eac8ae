// The defaults of model training options, each defined here once: the option types document them
// (model/types.ts), the validators and the native calls fill them in from here, and the Trainer
// and the CLI take theirs from here too.

/** LoRA rank r (PEFT's default). */
export const DEFAULT_LORA_RANK = 8;
/** LoRA alpha: the update is scaled by alpha / r, so 16 with r = 8 is the scale 2 most recipes use. */
export const DEFAULT_LORA_ALPHA = 16;
/** Dropout on each adapter's input during training steps (PEFT's lora_dropout). */
export const DEFAULT_LORA_DROPOUT = 0;
/** Peak learning rate of AdamW (the Trainer's, and optimizerStep's when none is given). */
export const DEFAULT_LR = 2e-4;
/** AdamW's betas and epsilon, as torch.optim.AdamW. */
export const DEFAULT_BETA1 = 0.9;
export const DEFAULT_BETA2 = 0.999;
export const DEFAULT_EPS = 1e-8;
/** Decoupled weight decay of optimizerStep (the Trainer's own default is its weightDecay option's). */
export const DEFAULT_WEIGHT_DECAY = 0;
/** Global gradient-norm clipping of optimizerStep (0: off; the Trainer clips at its maxGradNorm). */
export const DEFAULT_MAX_GRAD_NORM = 0;
