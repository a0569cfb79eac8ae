// The live dashboard: an HTTP server on 127.0.0.1 that serves the run's page and streams the
// records of its metrics file as they are appended (Server-Sent Events). It only reads the file
// the Trainer writes, so it can watch a run of this process (`tunekit train --dashboard`) or of
// another (`tunekit dashboard <output folder>`), a finished one included.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TunekitError } from '../../errors.js';
import { parseRecords, runPage, type RunRecord } from './page.js';

export interface Dashboard {
  /** Where the page is, e.g. http://127.0.0.1:43117/ */
  url: string;
  close(): Promise<void>;
}

/** Follows a growing metrics file: whole lines only; a file replaced or shrunk (a resume trims it) starts over. */
class MetricsTail {
  records: RunRecord[] = [];
  private offset = 0;
  private inode = -1;
  private rest = '';
  constructor(private readonly file: string) {}
  /** Reads what was appended; returns 'reset' when the file was rewritten (then `records` is all of it). */
  poll(): RunRecord[] | 'reset' {
    let st;
    try {
      st = statSync(this.file);
    } catch {
      if (this.records.length === 0 && this.offset === 0) return [];
      this.records = [], this.offset = 0, this.rest = '', this.inode = -1;
      return 'reset';
    }
    const rewritten = (this.inode !== -1 && st.ino !== this.inode) || st.size < this.offset;
    if (rewritten) this.records = [], this.offset = 0, this.rest = '';
    this.inode = st.ino;
    if (st.size === this.offset) return rewritten ? 'reset' : [];
    const fd = openSync(this.file, 'r');
    try {
      const buf = Buffer.alloc(Math.min(st.size - this.offset, 64 << 20));
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      const text = this.rest + buf.subarray(0, n).toString('utf8');
      const cut = text.lastIndexOf('\n');
      this.rest = text.slice(cut + 1);
      const fresh = parseRecords(text.slice(0, cut + 1));
      this.records.push(...fresh);
      return rewritten ? 'reset' : fresh;
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Serves the page of the run whose metrics are in `metricsFile` on 127.0.0.1 (`port` 0: any free
 * one). Only this machine can connect; the page fetches nothing but its own events.
 */
export async function serveDashboard(metricsFile: string, options: { port?: number; title?: string } = {}): Promise<Dashboard> {
  const tail = new MetricsTail(metricsFile);
  const clients = new Set<ServerResponse>();
  const title = options.title ?? 'tunekit: training run';
  const send = (res: ServerResponse, event: string, data: unknown, id?: number) => res.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const pollNow = () => {
    const before = tail.records.length;
    const fresh = tail.poll();
    if (fresh === 'reset') for (const c of clients) send(c, 'reset', tail.records, tail.records.length);
    else fresh.forEach((r, i) => { for (const c of clients) send(c, 'record', r, before + i + 1); });
  };
  pollNow();
  const timer = setInterval(pollNow, 250);
  timer.unref();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET') return void res.writeHead(405).end();
    if (url.pathname === '/' || url.pathname === '/index.html') {
      pollNow();
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      return void res.end(runPage(title, tail.records, true));
    }
    if (url.pathname === '/records.json') {
      pollNow();
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      return void res.end(JSON.stringify(tail.records));
    }
    if (url.pathname === '/events') {
      // A reconnecting browser says which record it had last (Last-Event-ID); a first connection, in `from`.
      const from = Number(req.headers['last-event-id'] ?? url.searchParams.get('from') ?? 0);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write('retry: 1000\n\n');
      if (!Number.isInteger(from) || from < 0 || from > tail.records.length) send(res, 'reset', tail.records, tail.records.length);
      else tail.records.slice(from).forEach((r, i) => send(res, 'record', r, from + i + 1));
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `The dashboard could not listen on 127.0.0.1:${options.port ?? 0} (${e.code ?? e.message})${e.code === 'EADDRINUSE' ? ': the port is taken; pass another, or 0 for any free one' : ''}`));
    });
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => {
      clearInterval(timer);
      pollNow(); // the last records reach the open pages before they are cut off
      for (const c of clients) c.end();
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
