#!/usr/bin/env bash
# The GPU checks of issue 13, in one run on the GPU machine (an H200 with driver 580, CUDA 13.0,
# PyTorch, transformers, PEFT; no Node.js): unpack what bench/gpu/pack.sh prepared, then
#   1. every backend-ops case on the GPU against the CPU, and a LoRA step of a SmolLM2-135M-shaped
#      model (random weights, made by the peer script) on both, with a verdict per row;
#   2. the `cuda` bench suite: step tokens/s and peak memory beside transformers + PEFT, NF4
#      decoding against the copy bandwidth, the LoRA linear against the plain GEMM.
# Usage (device): bash bench/gpu/run.sh [--check-only]     carry: .cache/gpu-carry
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
carry="$root/.cache/gpu-carry"
cd "$root"
node="$(command -v node || true)"
if [ -z "$node" ]; then
  node="$(mktemp -d)/node"
  xz -dc "$carry/node.xz" > "$node" && chmod +x "$node"
fi
tar -xJf "$carry/runtime.tar.xz"
export TUNEKIT_ADDON="$carry/tunekit.node"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 bench/peers/cuda_peer.py '{"op": "make_model", "dir": ".bench-cache/cuda-SmolLM2-135M", "seed": 1, "shape": {"dim": 576, "layers": 30, "ffn": 1536, "heads": 9, "kv_heads": 3, "vocab": 49152, "tied": true}}'
"$node" dist/bench/gpu/check.js .bench-cache/cuda-SmolLM2-135M
[ "${1:-}" = "--check-only" ] && exit 0
TUNEKIT_PEER_PYTHON="$(command -v python3)" "$node" dist/bench/run.js cuda --reps 5
