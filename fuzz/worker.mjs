// A fuzz worker: runs the cases the driver sends (one at a time, over IPC) through tunekit's public
// API and answers how each ended. The driver counts a signal or a silence past the timeout against
// the case it sent, and starts a new worker.
import { TARGETS } from './targets.mjs';

const api = await import(new URL('../dist/lib/index.js', import.meta.url).href);
process.on('message', async ({ id, target, dir, options }) => {
  let outcome;
  try {
    await TARGETS[target].run(api, dir, options);
    outcome = { kind: 'accepted' };
  } catch (e) {
    outcome = e instanceof api.TunekitError
      ? { kind: 'tunekit', code: e.code, message: String(e.message).slice(0, 300) }
      : { kind: 'other', message: `${e?.constructor?.name ?? typeof e}: ${String(e?.message ?? e).slice(0, 300)}`, stack: String(e?.stack ?? '').split('\n').slice(0, 6).join('\n') };
  }
  process.send({ id, ...outcome });
});
process.send({ ready: true });
