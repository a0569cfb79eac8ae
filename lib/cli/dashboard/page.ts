// The run's page: the live dashboard (`tunekit train --dashboard`, `tunekit dashboard`) and
// report.html are this one page; live, it streams new records from the server, and as a report
// the records are embedded and it needs nothing else (no network, one file).
import { CLIENT_SCRIPT } from './client.js';

/** A metrics record as the Trainer and runJob write them (metrics.jsonl: one per line). */
export type RunRecord = Record<string, unknown> & { type?: string };

const STYLE = `
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1500px;padding:0 16px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:0}
#status{color:#444;margin:0 0 16px}.state{font-weight:600}
.tables{display:flex;gap:32px;flex-wrap:wrap;align-items:flex-start}
table{border-collapse:collapse;font-size:13px}th,td{text-align:left;padding:3px 12px 3px 0;border-bottom:1px solid #eee;vertical-align:top}
th{font-weight:500;color:#555}
#charts{display:flex;flex-wrap:wrap;gap:8px 24px;margin-top:20px}
.chart{flex:0 0 auto}.chart-head{display:flex;gap:16px;align-items:baseline;flex-wrap:wrap;max-width:680px}
.legend{font-size:12px;color:#444}.key{margin-right:12px;white-space:nowrap}.key i{display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:4px}
.plot{position:relative}svg{display:block;max-width:100%;height:auto}
.grid{stroke:#eee}.axis{stroke:#999}.tick,.label,.mark-label{font-size:11px;fill:#555}
.mark{stroke-dasharray:4 3}.mark.epoch{stroke:#bbb}.mark.resume{stroke:#ff7f0e}.mark.stop{stroke:#d62728}
.hover{stroke:#333;stroke-width:.6}
.tip{position:absolute;background:rgba(255,255,255,.95);border:1px solid #ccc;padding:4px 8px;font-size:12px;pointer-events:none;min-width:140px}
.empty{color:#888;font-size:13px}
#events-box{margin-top:20px;max-height:360px;overflow:auto}
label{font-size:13px;color:#444}
`;

// JSON inside <script> must not be able to close it: "<" is written as \u003c (and the line
// separators JavaScript once refused in strings are escaped too).
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** The page for a run's records; `live` pages stream further records from `events` beside them. */
export function runPage(title: string, records: RunRecord[], live: boolean): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body data-live="${live ? 1 : 0}">
<h1>${escapeHtml(title)}</h1>
<p id="status"></p>
<div class="tables">
<div><h2>Run</h2><table id="summary"></table></div>
<div><h2>Configuration</h2><table id="config"></table></div>
<div><h2>Data</h2><table id="data"></table></div>
</div>
<p><label>Loss smoothing <input id="smoothing" type="range" min="0" max="0.99" step="0.01" value="0.6"> <span id="smoothing-value">0.6</span></label></p>
<div id="charts"></div>
<div id="events-box"><h2>Events</h2><table><thead><tr><th>step</th><th>event</th><th></th></tr></thead><tbody id="events"></tbody></table></div>
<script type="application/json" id="tunekit-records">${scriptJson(records)}</script>
<script>${CLIENT_SCRIPT}</script>
</body></html>
`;
}

/** The records of a metrics JSONL text; a torn last line (a write in progress) is left for later. */
export function parseRecords(text: string): RunRecord[] {
  const out: RunRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as RunRecord);
    } catch {
      // not a record (a partial line, or someone else's text): skipped
    }
  }
  return out;
}
