// The device a model runs on (loadModel's `device`): refused before any weight is read when this
// build or machine cannot run it, and for a GPU, the addon is told where cuBLAS may be.
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { callNative, TunekitError } from '../errors.js';
import { detectLaunch } from '../dist/launcher.js';
import { native } from '../native.js';

/** Folders that may hold cuBLAS 13 and NCCL 2: pip's nvidia wheels (PyTorch's) in the usual Python trees, then a CUDA toolkit. */
export function cublasFolders(env: NodeJS.ProcessEnv = process.env): string[] {
  const roots = [env.VIRTUAL_ENV && join(env.VIRTUAL_ENV, 'lib'), env.CONDA_PREFIX && join(env.CONDA_PREFIX, 'lib'), join(homedir(), '.local', 'lib'),
    '/usr/local/lib', '/usr/lib', '/opt/conda/lib'].filter((r): r is string => !!r);
  const found: string[] = [];
  for (const root of roots) {
    let pythons: string[] = [];
    try {
      pythons = readdirSync(root).filter((d) => /^python3\.\d+$/.test(d));
    } catch {
      continue;
    }
    for (const py of pythons)
      for (const packages of ['site-packages', 'dist-packages'])
        for (const [wheel, library] of [['cu13', 'libcublas.so.13'], ['cublas', 'libcublas.so.13'], ['nccl', 'libnccl.so.2']]) {
          const dir = join(root, py, packages, 'nvidia', wheel!, 'lib');
          if (existsSync(join(dir, library!))) found.push(dir);
        }
  }
  for (const dir of [env.CUDA_HOME && join(env.CUDA_HOME, 'lib64'), '/usr/local/cuda/lib64', '/usr/local/cuda/targets/x86_64-linux/lib'])
    if (dir && existsSync(join(dir, 'libcublas.so.13'))) found.push(dir);
  return found;
}

/** Checks that `device` can run here and returns the backend name the addon takes. */
export function prepareDevice(device: string): string {
  if (device === 'cpu') return device;
  const info = callNative(() => native.runtimeInfo());
  if (!info.backends.includes('cuda') || !info.cuda)
    throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `device "${device}" needs a CUDA build of tunekit, and this one is CPU-only (${info.buildFlavour}): reinstall with TUNEKIT_CUDA=1 npm install`);
  if (info.cuda.error) throw new TunekitError('ERR_TUNEKIT_UNSUPPORTED', `device "${device}" cannot be used: ${info.cuda.error}`);
  // Under a launcher, plain 'cuda' is this rank's GPU among the machine's (NCCL needs one per rank).
  const launch = detectLaunch();
  const index = device === 'cuda' ? (launch ? launch.localRank % Math.max(1, info.cuda.devices.length) : 0) : Number(device.slice('cuda:'.length));
  if (index >= info.cuda.devices.length)
    throw new TunekitError('ERR_TUNEKIT_INVALID_ARGUMENT', `Expected a GPU this machine has (${info.cuda.devices.map((d) => d.device).join(', ')}) but received "${device}"`);
  // Read by the addon when it first opens cuBLAS (backend/cuda/cublas_api.cuh).
  if (process.env.TUNEKIT_CUDA_LIBRARY_PATH === undefined) process.env.TUNEKIT_CUDA_LIBRARY_PATH = cublasFolders().join(':');
  return `cuda:${index}`;
}
