// The run's page (issue #15, item 5) in a real browser: headless Chromium (Debian's `chromium`,
// driven by puppeteer-core) watches `tunekit train --dashboard` on the tiny Llama, sees the step
// count grow as the run streams its records, hovers a chart, and a screenshot of the loss chart
// holds its curve; then report.html of a run resumed once shows totals over both segments, the
// validation loss before training, the configuration and data counts, and the resume.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PNG } from 'pngjs';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyModelFolder } from './helpers.js';

const cli = fileURLToPath(new URL('../dist/lib/cli/main.js', import.meta.url));
const chromium = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => p && existsSync(p));
if (!chromium) console.warn('dashboard tests skipped: no Chromium (apt-get install chromium, or set CHROMIUM to its path)');

const work = mkdtempSync(join(tmpdir(), 'tunekit-dashboard-'));
tinyModelFolder(join(work, 'model'));
writeFileSync(join(work, 'data.jsonl'), Array.from({ length: 400 }, (_, i) => JSON.stringify({ text: `the cat sat on the mat number ${i % 17} and then it ran away` })).join('\n'));
const job = (name: string, training: string) => {
  writeFileSync(join(work, `${name}.yaml`), `model: model\ndata: { path: data.jsonl, validation: 0.1, test: 0.05 }\ntraining: ${training}\noutput: ${name}\n`);
  return `${name}.yaml`;
};

/** Starts `tunekit train`; resolves with the child and its stderr so far, once `until` shows in it. */
function train(args: string[], until: RegExp): Promise<{ child: ChildProcess; err: () => string; match: RegExpExecArray }> {
  const child = spawn(process.execPath, [cli, 'train', ...args], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      err += d;
      const m = until.exec(err);
      if (m) resolve({ child, err: () => err, match: m });
    });
    child.on('exit', (code) => reject(new Error(`tunekit train exited (${code}) before ${until}:\n${err}`)));
  });
}
const exited = (child: ChildProcess) => new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('exit', resolve)));

describe.skipIf(!chromium)('the run page in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('follows a run live: the step count grows, charts draw, hovers answer', async () => {
    // Long enough to watch (thousands of steps); stopped with Ctrl-C once seen.
    const { child, err, match } = await train([job('live', '{ epochs: 100, batchSize: 4, lr: 0.01, maxLength: 32, evalEvery: 20 }'), '--dashboard'], /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/);
    try {
      const page = await browser.newPage();
      await page.setViewport({ width: 1400, height: 1200 });
      await page.goto(match[1]!);
      const step = () => page.$eval('#step', (e) => Number(e.textContent));
      await page.waitForFunction(() => Number(document.querySelector('#step')?.textContent) > 0, { timeout: 30_000 });
      const first = await step();
      await page.waitForFunction((n) => Number(document.querySelector('#step')?.textContent) > n + 20, { timeout: 30_000 }, first);
      expect(await step()).toBeGreaterThan(first + 20);
      await page.waitForFunction(() => document.querySelectorAll('#events tr.eval').length >= 2, { timeout: 30_000 });
      expect(await page.$eval('#config', (e) => e.textContent)).toMatch(/learning rate\s*0\.01 \(linear\)/);
      expect(await page.$eval('#data', (e) => e.textContent)).toMatch(/340 train \/ 40 validation \/ 20 test/);
      for (const id of ['loss', 'lr', 'gradnorm', 'throughput', 'memory']) expect(await page.$(`#chart-${id} svg path`), id).not.toBeNull();
      // Hover the middle of the loss chart: a tooltip with the step and the values there.
      const box = (await (await page.$('#chart-loss svg'))!.boundingBox())!;
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.waitForFunction(() => { const t = document.querySelector<HTMLElement>('#chart-loss .tip'); return t && !t.hidden && /step \d+/.test(t.textContent ?? ''); }, { timeout: 5_000 });
      expect(await page.$eval('#chart-loss .tip', (e) => e.textContent)).toMatch(/training \d/);
      // The screenshot of the loss chart holds the curve (#1f77b4) and a validation point (#d62728).
      await page.mouse.move(0, 0);
      const png = PNG.sync.read(Buffer.from(await (await page.$('#chart-loss svg'))!.screenshot()));
      const near = (r: number, g: number, b: number) => {
        let n = 0;
        for (let i = 0; i < png.data.length; i += 4) if (Math.abs(png.data[i]! - r) + Math.abs(png.data[i + 1]! - g) + Math.abs(png.data[i + 2]! - b) < 40) n++;
        return n;
      };
      expect(near(0x1f, 0x77, 0xb4)).toBeGreaterThan(150);
      expect(near(0xd6, 0x27, 0x28)).toBeGreaterThan(20);
      await page.close();
    } finally {
      child.kill('SIGINT');
      await exited(child);
    }
    expect(err()).toMatch(/stopped; resume with/);
  }, 180_000);

  it('report.html of a resumed run spans both segments', async () => {
    const first = await train([job('resumed', '{ maxSteps: 30, batchSize: 4, lr: 0.01, maxLength: 32, evalEvery: 10, checkpointEvery: 10 }')], /done in/);
    expect(await exited(first.child)).toBe(0);
    job('resumed', '{ maxSteps: 60, batchSize: 4, lr: 0.01, maxLength: 32, evalEvery: 10, checkpointEvery: 10 }');
    const second = await train(['resumed.yaml', '--resume'], /done in/);
    expect(await exited(second.child)).toBe(0);
    expect(second.err()).toMatch(/resumed from .*checkpoint-0*30 at step 30/);
    const records = readFileSync(join(work, 'resumed', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const results = records.filter((r) => r.type === 'result');
    expect(results.map((r) => r.segments)).toEqual([1, 2]);
    // Training time adds up over the segments (the first segment's steps are not counted again).
    expect(results[1].seconds).toBeGreaterThan(results[0].seconds);
    const page = await browser.newPage();
    await page.goto(pathToFileURL(join(work, 'resumed', 'report.html')).href);
    const summary = await page.$eval('#summary', (e) => e.textContent);
    expect(summary).toMatch(/steps60 of 60/);
    expect(summary).toMatch(/over 2 segments/);
    expect(summary).toMatch(/validation loss before training\d/);
    expect(await page.$eval('#status', (e) => e.textContent)).toMatch(/stopped \(max-steps\).*2 segments/);
    expect(await page.$$eval('#events tr.resume', (r) => r.length)).toBe(1);
    expect(await page.$('#chart-loss line.mark.resume')).not.toBeNull();
    // Offline: nothing but the page itself (no network requests, no external URL in it).
    expect(readFileSync(join(work, 'resumed', 'report.html'), 'utf8')).not.toMatch(/(src|href)=["']?https?:/);
    // `tunekit dashboard <output folder>` serves a finished run the same way, until Ctrl-C.
    const serve = spawn(process.execPath, [cli, 'dashboard', 'resumed'], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      serve.stdout!.on('data', (d) => { out += d; const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out); if (m) resolve(m[1]!); });
      serve.on('exit', (code) => reject(new Error(`tunekit dashboard exited (${code}): ${out}`)));
    });
    await page.goto(url);
    expect(await page.$eval('#step', (e) => e.textContent)).toBe('60');
    serve.kill('SIGINT');
    expect(await exited(serve)).toBe(0);
    await page.close();
  }, 180_000);
});
