"""The reference safetensors implementation's verdict on files tunekit accepted: prints the ones it
refuses (one per line: path<TAB>reason). Needs only the safetensors package (no numpy)."""
import sys

import safetensors

for path in sys.stdin.read().split("\n"):
    if not path:
        continue
    try:
        with open(path, "rb") as f:
            safetensors.deserialize(f.read())
    except Exception as e:  # noqa: BLE001 - any refusal is the verdict
        print(f"{path}\t{type(e).__name__}: {str(e)[:200]}")
