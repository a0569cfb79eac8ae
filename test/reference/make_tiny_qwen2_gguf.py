"""The tiny Qwen2 (test/reference/fixtures/tiny-qwen2) as a GGUF file the way llama.cpp names a
qwen2 model (qwen2.* metadata; blk.N.attn_q.weight/.bias ...; no q/k permutation for this
architecture; tied embeddings: no output.weight), f32. transformers loads the file back and must
give the Hugging Face folder's logits (checked here), so the file means what llama.cpp's does.
test/hf-llama.test.ts loads it with tunekit. Run in the peers' environment:
    bench/peers/.venv/bin/python test/reference/make_tiny_qwen2_gguf.py
"""
import json
import os

import numpy as np
import torch
from gguf import GGUFWriter
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM

DIR = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-qwen2")
OUT = os.path.join(DIR, "tiny-qwen2.gguf")
NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
         "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
         "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}


def main() -> None:
    cfg = json.load(open(os.path.join(DIR, "config.json")))
    weights = load_file(os.path.join(DIR, "model.safetensors"))
    w = GGUFWriter(OUT, arch="qwen2")
    w.add_name("tunekit-tiny-qwen2")
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(64)
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    for name, t in weights.items():
        if name == "model.embed_tokens.weight":
            out = "token_embd.weight"
        elif name == "model.norm.weight":
            out = "output_norm.weight"
        else:
            layer, rest = name[len("model.layers."):].split(".", 1)
            module, kind = rest.rsplit(".", 1)
            out = f"blk.{layer}.{NAMES[module]}.{kind}"
        w.add_tensor(out, t.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    # transformers reading the GGUF must see the same model as the folder.
    ids = torch.arange(1, 13)[None]
    a = AutoModelForCausalLM.from_pretrained(DIR, dtype=torch.float32)(ids).logits
    b = AutoModelForCausalLM.from_pretrained(DIR, gguf_file="tiny-qwen2.gguf", dtype=torch.float32)(ids).logits
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


if __name__ == "__main__":
    main()
