// The bench output: a table (ours | peer | ratio | limit) or one JSON object per row with --json.

export interface Row {
  suite: string;
  case: string;
  ours: number;
  peer: number | null;
  /** ours / peer for throughputs (higher is better); null without a peer. */
  ratio: number | null;
  /** The machine's ceiling for this figure where one applies (e.g. measured FMA peak). */
  limit: number | null;
  unit: string;
  /** Extra columns for the table only (e.g. % of limit). */
  note?: string;
}

const fmt = (x: number | null, digits = 1) => (x === null ? '-' : x.toFixed(digits));

export function printRows(rows: Row[], json: boolean, title: string): void {
  if (json) {
    for (const r of rows) console.log(JSON.stringify({ suite: r.suite, case: r.case, ours: r.ours, peer: r.peer, ratio: r.ratio, limit: r.limit, unit: r.unit }));
    return;
  }
  const head = ['case', 'ours', 'peer', 'ratio', 'limit', 'unit', 'note'];
  const body = rows.map((r) => [r.case, fmt(r.ours), fmt(r.peer), fmt(r.ratio, 2), fmt(r.limit), r.unit, r.note ?? '']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => (i === 0 || i >= 5 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ') + ' |';
  console.log(`\n${title}\n`);
  console.log(line(head));
  console.log('|' + widths.map((w, i) => (i === 0 || i >= 5 ? ':' + '-'.repeat(w + 1) : '-'.repeat(w + 1) + ':')).join('|') + '|');
  for (const b of body) console.log(line(b));
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
