#!/usr/bin/env bash
# Installs the CUDA 13.0 compile toolchain (nvcc, the static cudart, CCCL, cuBLAS headers, and
# NCCL's header for GPU ranks) from PyPI wheels into .cache/cuda-toolkit, with no system CUDA and no
# root; prints the folder that holds bin/nvcc. The GPU machines run driver 580 (CUDA 13.0), so the toolchain is 13.0: code
# built by a newer one would not load there. Re-running is a no-op once installed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${TUNEKIT_CUDA_TOOLKIT_DIR:-$root/.cache/cuda-toolkit}"
cu="$target/nvidia/cu13"
if [ ! -x "$cu/bin/nvcc" ] || [ ! -e "$cu/include/cublasLt.h" ] || [ ! -e "$target/nvidia/nccl/include/nccl.h" ]; then
  python="$(command -v python3 || command -v python)"
  PIP_BREAK_SYSTEM_PACKAGES=1 "$python" -m pip install --quiet --upgrade --disable-pip-version-check --no-warn-script-location --target "$target" \
    'cuda-toolkit[nvcc,cudart,cccl,crt,cublas]==13.0.3' 'nvidia-nccl-cu13==2.30.7' >&2
fi
# The wheels ship nvcc without its execute bit on some pip versions, and put the libraries in lib/
# where nvcc.profile (and so CMake's compiler check) looks in lib64/.
chmod +x "$cu"/bin/* "$cu"/nvvm/bin/* 2>/dev/null || true
[ -e "$cu/lib64" ] || ln -s lib "$cu/lib64"
echo "$cu"
