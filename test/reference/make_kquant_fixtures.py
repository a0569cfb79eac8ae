"""GGUF K-quant fixtures from llama.cpp's own Python package (gguf-py): a small GGUF file with one
tensor each in Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q5_0, Q5_1, IQ4_NL and IQ4_XS, and the values gguf-py's dequantization gives for
each. test/kquants.test.ts reads the file with our reader and compares every element, bit for bit.

gguf-py quantizes none of the K-quants, so the blocks are random bytes (every bit of every code,
scale and minimum field exercised) with the fp16 super-block scales set to finite values.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_kquant_fixtures.py
"""
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter
from gguf.quants import dequantize, quantize
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "gguf")

# type, bytes per 256-weight block, byte offsets of its fp16 scales (d, and dmin where it has one)
SPECS = [
    ("q2_k", T.Q2_K, 84, [80, 82]),
    ("q3_k", T.Q3_K, 110, [108]),
    ("q4_k", T.Q4_K, 144, [0, 2]),
    ("q5_k", T.Q5_K, 176, [0, 2]),
    ("q6_k", T.Q6_K, 210, [208]),
]
ROWS, COLS = 3, 512
# Q5_0 / Q5_1 (what Q4_K_M and Q5_K_M files hold where a row is not a multiple of 256): quantized
# by gguf-py from normal values.
QUANTIZED = [("q5_0", T.Q5_0), ("q5_1", T.Q5_1)]
# llama.cpp's non-linear 4-bit formats (IQ4_NL files, and IQ4_XS's 256-element super-blocks):
# type, elements and bytes per block.
IQ4 = [("iq4_nl", T.IQ4_NL, 32, 18), ("iq4_xs", T.IQ4_XS, 256, 136)]


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(11)
    w = GGUFWriter(os.path.join(OUT, "kquants.gguf"), arch="llama")
    expected = {}
    for name, qtype, size, scales in SPECS:
        blocks = rng.integers(0, 256, size=(ROWS * COLS // 256, size), dtype=np.uint8)
        for at in scales:
            f16 = rng.uniform(0.001, 0.05, size=blocks.shape[0]).astype(np.float16) * rng.choice([-1, 1], size=blocks.shape[0]).astype(np.float16)
            blocks[:, at:at + 2] = f16.view(np.uint8).reshape(-1, 2)
        data = blocks.reshape(ROWS, COLS // 256 * size)
        w.add_tensor(name, data, raw_dtype=qtype)
        expected[name] = np.ascontiguousarray(dequantize(data, qtype).astype(np.float32).reshape(ROWS, COLS))

    for name, qtype in QUANTIZED:
        x = (rng.standard_normal((ROWS, COLS)) * 0.5).astype(np.float32)
        data = quantize(x, qtype)
        w.add_tensor(name, data, raw_dtype=qtype)
        expected[name] = np.ascontiguousarray(dequantize(data, qtype).astype(np.float32).reshape(ROWS, COLS))
    # IQ4_NL (32 per block) and IQ4_XS (256): random codes and group scales, finite fp16 d. Added
    # after the others, so that their random draws (and bytes) are unchanged.
    for name, qtype, per, size in IQ4:
        blocks = rng.integers(0, 256, size=(ROWS * COLS // per, size), dtype=np.uint8)
        f16 = rng.uniform(0.0005, 0.002, size=blocks.shape[0]).astype(np.float16) * rng.choice([-1, 1], size=blocks.shape[0]).astype(np.float16)
        blocks[:, 0:2] = f16.view(np.uint8).reshape(-1, 2)
        data = blocks.reshape(ROWS, COLS // per * size)
        w.add_tensor(name, data, raw_dtype=qtype)
        expected[name] = np.ascontiguousarray(dequantize(data, qtype).astype(np.float32).reshape(ROWS, COLS))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    save_file(expected, os.path.join(OUT, "kquants.expected.safetensors"))


if __name__ == "__main__":
    main()
