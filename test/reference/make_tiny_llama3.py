"""A tiny random Llama with Llama 3.1's RoPE scaling (rope_type "llama3": factor 8, low/high
frequency factors 1 and 4, original context 8 tokens, so that at 24 positions every branch of
the rule is taken: pairs kept, divided by the factor, and smoothed between), saved by
transformers, with its logits on fixed ids; and the same model as a GGUF written the way
llama.cpp's convert_hf_to_gguf.py writes Llama 3 (q/k rows permuted for interleaved RoPE, the
scaling as a rope_freqs.weight tensor of per-pair divisors). test/hf-llama.test.ts loads both with
tunekit and compares with transformers' logits.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_tiny_llama3.py
"""
import math
import os

import numpy as np
import torch
from safetensors.numpy import save_file
from transformers import LlamaConfig, LlamaForCausalLM

from llama_gguf import close, gguf_name, llama_writer, permute

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-llama3")
SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8}


def rope_factors(head_dim: int, theta: float) -> np.ndarray:
    """Per-pair divisors of the frequencies, as convert_hf_to_gguf.py computes them for llama3."""
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    factor, low, high, old = SCALING["factor"], SCALING["low_freq_factor"], SCALING["high_freq_factor"], SCALING["original_max_position_embeddings"]
    out = []
    for f in freqs.tolist():
        wavelen = 2 * math.pi / f
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def main() -> None:
    torch.manual_seed(3)
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
                         rope_scaling=SCALING, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape))
    model.save_pretrained(OUT, safe_serialization=True)
    ids = torch.randint(0, 128, (1, 24), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        logits = model(ids).logits[0]
    save_file({"ids": ids[0].numpy().astype(np.int32), "logits": logits.numpy().astype(np.float32)}, os.path.join(OUT, "expected.safetensors"))

    head_dim = config.hidden_size // config.num_attention_heads
    w = llama_writer(os.path.join(OUT, "tiny-llama3.gguf"), "llama", "tunekit-tiny-llama3", layers=config.num_hidden_layers,
                     context=config.max_position_embeddings, dim=config.hidden_size, ffn=config.intermediate_size,
                     heads=config.num_attention_heads, kv_heads=config.num_key_value_heads, theta=10000.0,
                     eps=config.rms_norm_eps, vocab=config.vocab_size)
    w.add_rope_dimension_count(head_dim)
    for name, t in model.state_dict().items():
        t = t.numpy().astype(np.float32)
        if name.endswith("self_attn.q_proj.weight"):
            t = permute(t, config.num_attention_heads)
        elif name.endswith("self_attn.k_proj.weight"):
            t = permute(t, config.num_key_value_heads)
        w.add_tensor(gguf_name(name), t)
    w.add_tensor("rope_freqs.weight", rope_factors(head_dim, 10000.0))
    close(w)


if __name__ == "__main__":
    main()
