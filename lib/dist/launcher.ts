// Which launcher started this process, from the environment it sets, before any MPI call: MPI_Init
// without a launcher tries to start a daemon of its own, so a plain `node train.mjs` must never
// reach it (and never loads the MPI engine).
export interface Launch {
  launcher: 'openmpi' | 'mpich' | 'slurm';
  rank: number;
  world: number;
  /** The rank among those on this machine (which GPU `device: 'cuda'` takes); the global rank when the launcher does not say. */
  localRank: number;
}

const int = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined);

/** The launcher's rank and world size, or null for a process no launcher started. */
export function detectLaunch(env: NodeJS.ProcessEnv = process.env): Launch | null {
  const pairs: [Launch['launcher'], string, string, string][] = [
    ['openmpi', 'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK'], // mpirun / mpiexec of Open MPI
    ['mpich', 'PMI_RANK', 'PMI_SIZE', 'MPI_LOCALRANKID'], // Hydra (MPICH, Intel MPI); srun --mpi=pmi2
    ['slurm', 'SLURM_PROCID', 'SLURM_STEP_NUM_TASKS', 'SLURM_LOCALID'], // srun (a job step, not the batch script itself)
  ];
  for (const [launcher, r, w, local] of pairs) {
    const rank = int(env[r]), world = int(env[w]);
    if (rank !== undefined && world !== undefined && world >= 1 && rank < world) return { launcher, rank, world, localRank: int(env[local]) ?? rank };
  }
  return null;
}
