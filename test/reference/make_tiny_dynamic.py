"""A tiny random Llama with dynamic NTK RoPE scaling (rope_type "dynamic", factor 2,
max_position_embeddings 8), saved by transformers, with what transformers computes on it:
- the logits of 24 ids (one forward of length 24 > 8: the base becomes θ·(2·24/8 − 1)^(d/(d−2)));
- the logits of their first 6 (≤ 8: plain RoPE);
- the greedy continuation of 4 of them over 12 tokens, through the cache, each step rotating its
  new query and key with the base for its own length (the cached keys keep theirs);
- PEFT's LoRA loss and gradients on q and v at the 24 ids.
The generator checks that the scaling changes the long logits and leaves the short ones alone.
test/hf-llama.test.ts loads the folder with tunekit.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_tiny_dynamic.py
"""
import os

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

from peft_fixture import qv_lora_step

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-dynamic")
SCALING = {"rope_type": "dynamic", "factor": 2.0}


def config(scaling) -> LlamaConfig:
    return LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, max_position_embeddings=8, rms_norm_eps=1e-6, rope_theta=10000.0,
                       rope_scaling=scaling, tie_word_embeddings=False,
                       initializer_range=0.3)  # sharp attention, so that RoPE's base shows in the logits


def fresh(state) -> LlamaForCausalLM:
    """A new model (transformers' dynamic RoPE keeps the longest length it has seen, so each use starts anew)."""
    m = LlamaForCausalLM(config(SCALING)).eval()
    m.load_state_dict(state)
    return m


def main() -> None:
    torch.manual_seed(0)
    model = LlamaForCausalLM(config(SCALING)).eval()
    model.save_pretrained(OUT, safe_serialization=True)
    state = model.state_dict()
    ids = torch.randint(0, 128, (1, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = fresh(state)(ids).logits[0]
        short = fresh(state)(ids[:, :6]).logits[0]
        greedy = fresh(state).generate(ids[:, :4], max_new_tokens=12, do_sample=False, min_new_tokens=12)[0, 4:]
        plain = LlamaForCausalLM(config(None)).eval()
        plain.load_state_dict(state)
        change = (plain(ids).logits[0] - logits).abs().max().item()
        assert change > 0.1 * logits.abs().max(), "the scaling must change the long logits"
        assert (plain(ids[:, :6]).logits[0] - short).abs().max() == 0, "and leave the short ones alone"
    tensors = {"ids": ids[0].to(torch.int32), "logits": logits, "short_logits": short, "greedy": greedy.to(torch.int32)}
    loss = qv_lora_step(fresh(state), ids, tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "expected.safetensors"))
    print("greedy", greedy.tolist(), "loss", loss, "change of the long logits", change, "of", logits.abs().max().item())


if __name__ == "__main__":
    main()
