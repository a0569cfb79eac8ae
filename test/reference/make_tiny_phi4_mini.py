"""A tiny random Phi-4-mini-shaped model (Phi3ForCausalLM with partial_rotary_factor 0.75, longrope
scaling, grouped-query attention, tied embeddings) saved by transformers: logits of a sequence
within the original context (short factors) and of one past it (long factors), the greedy
continuation that crosses it, and the full and LoRA gradients on a batch past it. The original
context is 8 positions so the tests reach both sides; the generator checks that the short and
long factors and the attention factor each change the logits. And a GGUF of the same weights as
llama.cpp's converter writes it (phi3: rope.dimension_count 12, rope_factors_short / _long tensors,
rope.scaling.original_context_length and attn_factor), whose logits must be the folder's.
test/hf-phi3.test.ts loads both.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_tiny_phi4_mini.py
"""
import os

import math

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import Phi3Config, Phi3ForCausalLM

from llama_gguf import close, llama_writer
from make_tiny_phi3 import TARGETS, lora_key, phi3_name
from peft_fixture import record_steps

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-phi4-mini")


def config(short, long, max_positions=64) -> Phi3Config:
    return Phi3Config(vocab_size=160, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=max_positions, original_max_position_embeddings=8,
                      rms_norm_eps=1e-5, rope_theta=10000.0, partial_rotary_factor=0.75,
                      rope_scaling={"type": "longrope", "short_factor": short, "long_factor": long}, sliding_window=None,
                      tie_word_embeddings=True, initializer_range=0.1, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def main() -> None:
    torch.manual_seed(0)
    short = [1.0, 1.1, 1.3, 1.7, 2.3, 3.1]
    long = [1.0, 1.5, 2.5, 4.0, 7.0, 12.0]
    cfg = config(short, long)
    model = Phi3ForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.3 * torch.randn(p.shape))
    model.save_pretrained(OUT, safe_serialization=True)
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(3, 160, (2, 12), generator=g)
    labels = ids.clone()
    labels[0, :3] = -100
    state = model.state_dict()

    def logits_of(c, x):
        m = Phi3ForCausalLM(c).eval()
        m.load_state_dict(state)
        with torch.no_grad():
            return m(x).logits

    with torch.no_grad():
        short_logits = model(ids[:1, :6]).logits[0]  # positions 0..5: within the original 8
        long_logits = model(ids[:1]).logits[0]  # 12 positions: past it
        greedy = model.generate(ids[:1, :5], max_new_tokens=10, do_sample=False, eos_token_id=None, pad_token_id=0)[0, 5:]
    for what, c, x, ref in (("long factors", config(short, short), ids[:1], long_logits),
                            ("short factors", config(long, long), ids[:1, :6], short_logits),
                            ("attention factor", config(short, long, 8), ids[:1], long_logits)):
        gap = (logits_of(c, x)[0] - ref).abs().max().item() / ref.abs().max().item()
        assert gap > 1e-3, f"{what} changes the logits by only {gap}"
        print(what, "normalized change", gap)
    tensors = {"ids": ids.to(torch.int32), "labels": labels.to(torch.int32), "short_logits": short_logits, "long_logits": long_logits,
               "greedy": greedy.to(torch.int32)}
    record_steps(model, ids, labels, TARGETS, lora_key, g, tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "expected.safetensors"))
    w = llama_writer(os.path.join(OUT, "tiny-phi4-mini.gguf"), "phi3", "tunekit-tiny-phi4-mini", layers=cfg.num_hidden_layers,
                     context=cfg.max_position_embeddings, dim=cfg.hidden_size, ffn=cfg.intermediate_size, heads=cfg.num_attention_heads,
                     kv_heads=cfg.num_key_value_heads, theta=10000.0, eps=cfg.rms_norm_eps, vocab=cfg.vocab_size)
    w.add_rope_dimension_count(12)
    w.add_rope_scaling_orig_ctx_len(8)
    w.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(64 / 8) / math.log(8)))  # convert_hf_to_gguf's Phi3MiniModel
    w.add_tensor("rope_factors_short.weight", np.array(short, dtype=np.float32))
    w.add_tensor("rope_factors_long.weight", np.array(long, dtype=np.float32))
    for name, t in Phi3ForCausalLM.from_pretrained(OUT, dtype=torch.float32).state_dict().items():
        if name != "lm_head.weight":  # tied
            w.add_tensor(phi3_name(name), t.numpy().astype(np.float32))
    close(w)
    print("loss", tensors["loss"].item(), "lora loss", tensors["lora_loss"].item())


if __name__ == "__main__":
    main()
