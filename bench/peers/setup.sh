#!/usr/bin/env bash
# Creates bench/peers/.venv with the peers the bench suites compare against — PyTorch (bf16
# matmul through oneDNN, autograd for LoRA) and bitsandbytes (CPU NF4) — plus what
# test/reference/ needs to regenerate fixtures (safetensors, numpy, transformers, gguf, accelerate, peft). Benchmarks and fixture
# generation only: tunekit itself never runs Python.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install -q --upgrade pip
"$here/.venv/bin/pip" install -q torch bitsandbytes safetensors numpy transformers gguf accelerate peft pyarrow sacrebleu rouge-score scikit-learn sentencepiece
"$here/.venv/bin/python" -c "import torch, bitsandbytes; print('peers ready: torch', torch.__version__, 'bitsandbytes', bitsandbytes.__version__)"
