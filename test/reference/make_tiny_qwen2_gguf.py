"""The tiny Qwen2 (test/reference/fixtures/tiny-qwen2) as a GGUF file the way llama.cpp names a
qwen2 model (qwen2.* metadata; blk.N.attn_q.weight/.bias ...; no q/k permutation for this
architecture; tied embeddings: no output.weight), f32. transformers loads the file back and must
give the Hugging Face folder's logits (checked here), so the file means what llama.cpp's does.
The same file is also written split in three parts as gguf-split writes them (split/tiny-qwen2-0000N-of-00003.gguf:
the metadata in the first, split.no / split.count / split.tensors.count in each).
test/hf-llama.test.ts loads it with tunekit. Run in the peers' environment:
    bench/peers/.venv/bin/python test/reference/make_tiny_qwen2_gguf.py
"""
import json
import os

import numpy as np
import torch
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM

from llama_gguf import close, gguf_name, llama_writer

DIR = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-qwen2")
OUT = os.path.join(DIR, "tiny-qwen2.gguf")


def main() -> None:
    cfg = json.load(open(os.path.join(DIR, "config.json")))
    weights = load_file(os.path.join(DIR, "model.safetensors"))
    for path, split in ((OUT, 0), (os.path.join(DIR, "split", "tiny-qwen2.gguf"), 10)):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        w = llama_writer(path, "qwen2", "tunekit-tiny-qwen2", layers=cfg["num_hidden_layers"], context=64, dim=cfg["hidden_size"],
                         ffn=cfg["intermediate_size"], heads=cfg["num_attention_heads"], kv_heads=cfg["num_key_value_heads"],
                         theta=cfg["rope_parameters"]["rope_theta"], eps=cfg["rms_norm_eps"], vocab=cfg["vocab_size"], split_max_tensors=split)
        for name, t in weights.items():
            w.add_tensor(gguf_name(name), t.astype(np.float32))
        close(w)
    # transformers reading the GGUF must see the same model as the folder.
    ids = torch.arange(1, 13)[None]
    a = AutoModelForCausalLM.from_pretrained(DIR, dtype=torch.float32)(ids).logits
    b = AutoModelForCausalLM.from_pretrained(DIR, gguf_file="tiny-qwen2.gguf", dtype=torch.float32)(ids).logits
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


if __name__ == "__main__":
    main()
