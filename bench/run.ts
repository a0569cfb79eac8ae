// `npm run bench -- <suite...> [--json] [--reps N] [--quick]`: runs benchmark suites and prints
// ours | peer | ratio | limit for each case (or one JSON object per row with --json).
import { runCuda } from './suites/cuda.js';
import { runDist } from './suites/dist.js';
import { runGemm } from './suites/gemm.js';
import { runLora } from './suites/lora.js';
import { runNf4 } from './suites/nf4.js';
import { runScale } from './suites/scale.js';
import { runStep } from './suites/step.js';
import { printRows, type Row } from './table.js';

type Suite = (o: { reps: number; quick: boolean; mode?: string }) => Promise<{ rows: Row[]; notes: string[] }>;
const SUITES: Record<string, Suite> = { gemm: runGemm, nf4: runNf4, lora: runLora, step: runStep, scale: runScale, dist: runDist, cuda: runCuda };

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const quick = argv.includes('--quick');
  const modeAt = argv.indexOf('--mode');
  const mode = modeAt >= 0 ? argv[modeAt + 1] : undefined;
  if (mode !== undefined && mode !== 'fp32' && mode !== 'bf16') {
    console.error(`Expected fp32 or bf16 for --mode but received ${mode}`);
    return 2;
  }
  const repsAt = argv.indexOf('--reps');
  const reps = repsAt >= 0 ? Number(argv[repsAt + 1]) : 7;
  if (!Number.isInteger(reps) || reps < 1) {
    console.error(`Expected positive integer for --reps but received ${argv[repsAt + 1]}`);
    return 2;
  }
  const names = argv.filter((a, i) => !a.startsWith('--') && !(repsAt >= 0 && i === repsAt + 1) && !(modeAt >= 0 && i === modeAt + 1));
  if (names.length === 0 || names.some((n) => !(n in SUITES))) {
    console.error(`usage: npm run bench -- <${Object.keys(SUITES).join('|')}> [--json] [--reps N] [--quick] [--mode fp32|bf16]`);
    return 2;
  }
  for (const name of names) {
    const { rows, notes } = await SUITES[name]!({ reps, quick, mode });
    printRows(rows, json, `suite ${name}`);
    if (!json) for (const n of notes) console.log(`  ${n}`);
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
