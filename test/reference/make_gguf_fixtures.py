"""GGUF fixtures from llama.cpp's own Python package (gguf-py): a small v3 file with metadata of
every value type and tensors in F32, F16, BF16, Q4_0, Q4_1 and Q8_0, plus the values gguf-py's
reference dequantization gives for each tensor. test/gguf.test.ts reads the file with our reader
and compares every element.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_gguf_fixtures.py
"""
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter
from gguf.quants import dequantize, quantize
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "gguf")


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    w = GGUFWriter(os.path.join(OUT, "tiny.gguf"), arch="llama")
    w.add_name("tunekit-tiny")
    w.add_uint32("tiny.u32", 4000000000)
    w.add_int32("tiny.i32", -7)
    w.add_float32("tiny.f32", 0.25)
    w.add_bool("tiny.bool", True)
    w.add_uint64("tiny.u64", 2**40 + 3)
    w.add_float64("tiny.f64", -1.5)
    w.add_string("tiny.str", "héllo ✓")
    w.add_array("tiny.tokens", ["<s>", "a", "bc", "</s>"])
    w.add_array("tiny.ints", [1, -2, 3])
    expected = {}
    specs = [
        ("f32", T.F32, (3, 4)),
        ("f16", T.F16, (2, 32)),
        ("bf16", T.BF16, (2, 32)),
        ("q4_0", T.Q4_0, (4, 64)),
        ("q4_1", T.Q4_1, (4, 64)),
        ("q8_0", T.Q8_0, (4, 64)),
        ("vec_q8_0", T.Q8_0, (64,)),
    ]
    for name, qtype, shape in specs:
        x = (rng.standard_normal(shape) * 0.5).astype(np.float32)
        if qtype == T.F32:
            data, raw_dtype = x, None
        elif qtype == T.F16:
            data, raw_dtype = x.astype(np.float16), None
        else:
            data, raw_dtype = quantize(x, qtype), qtype
        w.add_tensor(name, data, raw_dtype=raw_dtype)
        deq = x if qtype == T.F32 else dequantize(data, qtype) if raw_dtype is not None else data.astype(np.float32)
        expected[name] = np.ascontiguousarray(np.asarray(deq, dtype=np.float32).reshape(shape))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    save_file(expected, os.path.join(OUT, "tiny.expected.safetensors"))


if __name__ == "__main__":
    main()
