// The data-parallel group of this process: the ranks a launcher started, joined over the MPI
// engine (native/dist/mpi/, a shared library beside the addon) the first time it is asked for.
// A process no launcher started, or started alone, is rank 0 of 1 and never loads MPI.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { awaitNative, callNative, TunekitError } from '../errors.js';
import { native, nativePath } from '../native.js';
import { detectLaunch, type Launch } from './launcher.js';

export interface ProcessGroup {
  readonly rank: number;
  readonly world: number;
  /** Who started the ranks, or null for a plain process. */
  readonly launcher: Launch['launcher'] | null;
  /** The MPI library's version line (null for a plain process). */
  readonly engine: string | null;
  /** The element-wise sum over ranks (every rank calls it with the same length). */
  allReduce(values: Float64Array): Promise<Float64Array>;
  /** root's values on every rank. */
  broadcast(values: Float64Array, root?: number): Promise<Float64Array>;
  barrier(): Promise<void>;
}

const single: ProcessGroup = {
  rank: 0, world: 1, launcher: null, engine: null,
  allReduce: async (v) => v, broadcast: async (v) => v, barrier: async () => {},
};

let joined: ProcessGroup | undefined;

/** The MPI engine library: TUNEKIT_MPI_ENGINE, else the one built beside the addon. */
function engineLibrary(): string {
  const named = process.env.TUNEKIT_MPI_ENGINE;
  if (named) return named;
  const dir = dirname(nativePath());
  const file = ['libtunekit_mpi.so', 'libtunekit_mpi.dylib'].map((f) => join(dir, f)).find((f) => existsSync(f));
  if (!file) {
    throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `This process was started by a launcher as one of several ranks, but tunekit was built without its MPI engine (no libtunekit_mpi beside ${nativePath()}). Install Open MPI (Debian: apt install openmpi-bin libopenmpi-dev) and rebuild: npm rebuild tunekit --build-from-source`);
  }
  return file;
}

/** This process's group: joins the launcher's ranks over MPI on first use. */
export function processGroup(): ProcessGroup {
  if (joined) return joined;
  const launch = detectLaunch();
  if (!launch || launch.world === 1) return (joined = single);
  const info = callNative(() => native.openDistributed(engineLibrary()));
  if (info.world !== launch.world || info.rank !== launch.rank) {
    throw new TunekitError('ERR_TUNEKIT_INTERNAL', `MPI says rank ${info.rank} of ${info.world}, but the launcher (${launch.launcher}) said rank ${launch.rank} of ${launch.world}`);
  }
  const rankError = (e: unknown) => {
    if (e instanceof TunekitError && !e.message.includes('rank ')) e.message = `rank ${info.rank}: ${e.message}`;
    return e;
  };
  return (joined = {
    rank: info.rank, world: info.world, launcher: launch.launcher, engine: info.version,
    async allReduce(values) {
      await awaitNative(() => native.distAllReduce(values)).catch((e) => { throw rankError(e); });
      return values;
    },
    async broadcast(values, root = 0) {
      await awaitNative(() => native.distBroadcast(values, root)).catch((e) => { throw rankError(e); });
      return values;
    },
    async barrier() {
      await awaitNative(() => native.distBarrier()).catch((e) => { throw rankError(e); });
    },
  });
}
