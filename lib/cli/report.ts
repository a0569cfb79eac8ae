// The training report: report.html, the dashboard's page with the run's records embedded, so that
// it opens offline as one file (no network) and shows what the live dashboard showed at the end.
import { readFile, writeFile } from 'node:fs/promises';
import { parseRecords, runPage } from './dashboard/page.js';

/** Writes report.html from a metrics JSONL file (every segment of a resumed run is in it). */
export async function writeReport(metricsFile: string, reportFile: string, title: string): Promise<void> {
  const records = parseRecords(await readFile(metricsFile, 'utf8'));
  await writeFile(reportFile, runPage(title, records, false));
}
