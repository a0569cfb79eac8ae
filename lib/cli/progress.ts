// A one-line progress bar on stderr: steps, loss, tokens/s and ETA. On a terminal it redraws in
// place; otherwise (CI logs, pipes) it prints a line every `every` steps.
import type { StepEvent } from '../train/trainer.js';

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export class ProgressBar {
  private readonly tty: boolean;
  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly every = 10) {
    this.tty = Boolean(stream.isTTY);
  }
  private silent = false;
  /** Prints nothing from now on (every rank but 0 of a data-parallel run). */
  quiet(): void {
    this.silent = true;
  }
  step(e: StepEvent): void {
    if (this.silent) return;
    const width = 24, done = Math.min(width, Math.round((e.step / e.totalSteps) * width));
    const line = `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${e.step}/${e.totalSteps} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} ${Math.round(e.tokensPerSecond)} tok/s ETA ${duration(e.etaSeconds)}`;
    if (this.tty) this.stream.write(`\r${line}\x1b[K`);
    else if (e.step % this.every === 0 || e.step === e.totalSteps || e.step === 1) this.stream.write(line + '\n');
  }
  message(text: string): void {
    if (this.silent) return;
    this.stream.write(this.tty ? `\r\x1b[K${text}\n` : text + '\n');
  }
}
