// Learning-rate schedules, as multipliers of the peak rate at optimizer step s (0-based: the
// number of steps already taken), exactly as transformers' get_*_schedule_with_warmup compute
// them, plus ULMFiT's slanted triangular rate (Howard & Ruder 2018, eq. 3).

export type ScheduleName = 'constant' | 'linear' | 'cosine' | 'slanted-triangular';

export interface ScheduleOptions {
  /** The schedule's shape after warmup: flat, linear decay to 0, cosine decay to 0, or ULMFiT's slanted triangle. */
  name: ScheduleName;
  /** Optimizer steps of the whole run. */
  totalSteps: number;
  /** Steps of linear warmup from 0 to the peak (constant, linear, cosine). */
  warmupSteps: number;
  /** Slanted triangular: share of the steps spent increasing (default 0.1). */
  cutFraction?: number;
  /** Slanted triangular: how much smaller the lowest rate is than the peak (default 32). */
  ratio?: number;
}

/** The multiplier of the peak learning rate at step s. */
export function scheduleFactor(o: ScheduleOptions, s: number): number {
  const { totalSteps: T, warmupSteps: w } = o;
  if (o.name === 'slanted-triangular') {
    const cutFrac = o.cutFraction ?? 0.1, ratio = o.ratio ?? 32;
    const cut = Math.max(1, Math.floor(T * cutFrac));
    const p = s < cut ? s / cut : 1 - (s - cut) / (cut * (1 / cutFrac - 1));
    return (1 + Math.max(0, p) * (ratio - 1)) / ratio;
  }
  if (s < w) return s / Math.max(1, w);
  if (o.name === 'constant') return 1;
  const progress = (s - w) / Math.max(1, T - w);
  if (o.name === 'linear') return Math.max(0, (T - s) / Math.max(1, T - w));
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
}
