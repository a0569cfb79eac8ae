// Running the Python peers (bench/peers/torch_peer.py) from the suites, when bench/peers/setup.sh
// has created their virtual environment (or TUNEKIT_PEER_PYTHON names an interpreter).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../lib/native.js';

export function peerPython(): string | null {
  const configured = process.env.TUNEKIT_PEER_PYTHON;
  if (configured) return configured;
  const venv = join(packageRoot(), 'bench/peers/.venv/bin/python');
  return existsSync(venv) ? venv : null;
}

/**
 * Median seconds of one peer job, or null without the peers' environment or when the job fails
 * there (bitsandbytes missing from an interpreter named by TUNEKIT_PEER_PYTHON, say): the
 * suite still prints our figures, with an empty peer column.
 */
export function peerSeconds(job: Record<string, unknown>): number | null {
  const python = peerPython();
  if (!python) return null;
  try {
    const out = execFileSync(python, [join(packageRoot(), 'bench/peers/torch_peer.py'), JSON.stringify(job)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const line = out.trim().split('\n').pop()!;
    return (JSON.parse(line) as { seconds: number }).seconds;
  } catch {
    return null;
  }
}

export function peerVersion(): string | null {
  const python = peerPython();
  if (!python) return null;
  try {
    return execFileSync(python, ['-c', 'import torch, bitsandbytes; print("torch", torch.__version__, "bitsandbytes", bitsandbytes.__version__)'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}
