"""Writes the safetensors fixtures that test/safetensors.test.ts reads, using the reference
implementation (the `safetensors` package) so our reader is checked against files we did not write.

Run from the repository root:  python3 test/reference/make_safetensors_fixtures.py
Needs: pip install safetensors numpy
Each tensor's values follow the formula in values() below, which the TypeScript test recomputes.
"""
import json
import os

import numpy as np
from safetensors._safetensors_rust import TensorSpec, serialize_file
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "safetensors")


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns with round-to-nearest-even."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def values(n: int) -> np.ndarray:
    # v[i] = (i * 37 % 101 - 50) / 8: exact in f32, f16 and bf16.
    i = np.arange(n)
    return ((i * 37 % 101) - 50) / 8.0


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    single = {
        "f32": values(2 * 3 * 4).astype(np.float32).reshape(2, 3, 4),
        "f16": values(10).astype(np.float16).reshape(10),
        "i32": (np.arange(6, dtype=np.int32) * -7 + 3).reshape(3, 2),
        "u8": (np.arange(5, dtype=np.uint8) * 50),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "i64": np.arange(4, dtype=np.int64),  # a dtype tunekit lists but does not load
    }
    save_file(single, os.path.join(OUT, "single.safetensors"), metadata={"format": "pt", "source": "reference"})

    # bf16 through the reference writer's raw interface (numpy has no bfloat16).
    bits = bf16_bits(values(12).astype(np.float32))
    spec = TensorSpec(dtype="bfloat16", shape=[3, 4], data_ptr=bits.ctypes.data, data_len=bits.nbytes)
    serialize_file({"bf16": spec}, os.path.join(OUT, "bf16.safetensors"), None)

    # A sharded model as transformers writes it: two shards and an index.
    shard1 = {"model.embed.weight": values(8).astype(np.float32).reshape(2, 4)}
    shard2 = {"model.head.weight": values(6).astype(np.float32).reshape(3, 2), "model.head.bias": values(3).astype(np.float32)}
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    os.makedirs(os.path.join(OUT, "sharded"), exist_ok=True)
    save_file(shard1, os.path.join(OUT, "sharded", names[0]), metadata={"format": "pt"})
    save_file(shard2, os.path.join(OUT, "sharded", names[1]), metadata={"format": "pt"})
    weight_map = {k: names[0] for k in shard1} | {k: names[1] for k in shard2}
    total = sum(v.nbytes for v in (shard1 | shard2).values())
    with open(os.path.join(OUT, "sharded", "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


if __name__ == "__main__":
    main()
