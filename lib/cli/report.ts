// The training report: one self-contained HTML file (inline SVG, no scripts, nothing fetched) with
// the training and validation loss curves, the learning rate and the gradient norm over steps,
// built from the metrics JSONL the Trainer appends.
import { readFile, writeFile } from 'node:fs/promises';

interface Series {
  name: string;
  color: string;
  points: [number, number][];
}

function chart(title: string, series: Series[], width = 640, height = 260): string {
  const all = series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y));
  if (all.length === 0) return `<h2>${title}</h2><p>No data.</p>`;
  const [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const pad = { l: 64, r: 16, t: 12, b: 36 };
  const sx = (x: number) => pad.l + ((x - x0) / Math.max(1e-12, x1 - x0)) * (width - pad.l - pad.r);
  const sy = (y: number) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  const ticks = Array.from({ length: 5 }, (_, i) => y0 + ((y1 - y0) * i) / 4);
  const fmt = (v: number) => (Math.abs(v) >= 1e-2 && Math.abs(v) < 1e4 ? v.toPrecision(4) : v.toExponential(2));
  const lines = series
    .filter((s) => s.points.length)
    .map((s) => {
      const d = s.points.filter(([, y]) => Number.isFinite(y)).map(([x, y], i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('');
      const dots = s.points.length <= 60 ? s.points.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`).join('') : '';
      return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"/>${dots}`;
    })
    .join('');
  const legend = series.map((s, i) => `<text x="${pad.l + 8 + i * 150}" y="${pad.t + 12}" fill="${s.color}" font-size="12">■ ${s.name}</text>`).join('');
  const grid = ticks.map((t) => `<line x1="${pad.l}" x2="${width - pad.r}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/><text x="${pad.l - 6}" y="${sy(t) + 4}" font-size="11" text-anchor="end">${fmt(t)}</text>`).join('');
  return `<h2>${title}</h2><svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg">
${grid}<line x1="${pad.l}" x2="${width - pad.r}" y1="${height - pad.b}" y2="${height - pad.b}" stroke="#999"/>
<text x="${pad.l}" y="${height - 10}" font-size="11">step ${x0}</text><text x="${width - pad.r}" y="${height - 10}" font-size="11" text-anchor="end">step ${x1}</text>
${lines}${legend}</svg>`;
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** Writes report.html from a metrics JSONL file; `summary` rows are shown as a table on top. */
export async function writeReport(metricsFile: string, reportFile: string, title: string, summary: Record<string, string | number>): Promise<void> {
  const records = (await readFile(metricsFile, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  // The last record of a step wins (logs written before resumes trimmed them held redone steps twice).
  const steps = new Map<number, Record<string, number>>();
  for (const r of records) if (r.type === 'step') steps.set(r.step as number, r as Record<string, number>);
  const train = [...steps.values()].sort((a, b) => a.step! - b.step!);
  const evals = records.filter((r) => r.type === 'eval') as Record<string, number & string>[];
  const splits = [...new Set(evals.map((e) => e.split as string))];
  const colors = ['#d62728', '#2ca02c', '#9467bd', '#8c564b'];
  const loss = chart('Loss', [
    { name: 'training', color: '#1f77b4', points: train.map((r) => [r.step!, r.loss!]) },
    ...splits.map((s, i) => ({ name: s, color: colors[i % colors.length]!, points: evals.filter((e) => e.split === s).map((e) => [e.step, e.loss] as [number, number]) })),
  ]);
  const lr = chart('Learning rate', [{ name: 'lr', color: '#ff7f0e', points: train.map((r) => [r.step!, r.lr!]) }]);
  const gn = chart('Gradient norm (before clipping)', [{ name: 'grad norm', color: '#17becf', points: train.map((r) => [r.step!, r.gradNorm!]) }]);
  const rows = Object.entries(summary).map(([k, v]) => `<tr><th>${escape(k)}</th><td>${escape(String(v))}</td></tr>`).join('');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse}th,td{text-align:left;padding:3px 12px;border-bottom:1px solid #eee}h2{font-size:16px;margin-top:28px}</style>
</head><body><h1>${escape(title)}</h1><table>${rows}</table>${loss}${lr}${gn}</body></html>\n`;
  await writeFile(reportFile, html);
}
