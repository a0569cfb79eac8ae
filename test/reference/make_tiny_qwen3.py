"""A tiny random Qwen3 (per-head q/k RMSNorm before RoPE, no biases, an explicit head_dim that is
not hidden / heads, tied embeddings) saved by transformers, with its logits, the full fine-tuning
gradient of every weight and PEFT's LoRA gradients (all seven projections, seeded non-zero A and
B) on a fixed batch; and the same model as a GGUF the way llama.cpp names a qwen3 model
(attn_q_norm / attn_k_norm, no q/k permutation), checked here to load in transformers' GGUF loader
with the folder's logits. test/hf-llama.test.ts loads both with tunekit.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_tiny_qwen3.py
"""
import os

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import Qwen3Config, Qwen3ForCausalLM

from llama_gguf import LAYER_NAMES, close, gguf_name, llama_writer
from peft_fixture import lora_grads, seed_lora

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-qwen3")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def lora_key(name: str) -> str:
    layer = int(name.split(".layers.")[1].split(".")[0])
    return f"blk.{layer}.{LAYER_NAMES['.'.join(name.split('.')[-2:])]}"


def main() -> None:
    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=160, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=24, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=1000000.0,
                         tie_word_embeddings=True)
    model = Qwen3ForCausalLM(config).eval()
    with torch.no_grad():  # norms away from 1 so the test sees them
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.2 * torch.randn(p.shape))
    model.save_pretrained(OUT, safe_serialization=True)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 160, (2, 12), generator=g)
    labels = ids.clone()
    labels[0, :3] = -100
    with torch.no_grad():
        logits = model(ids).logits
    # Full fine-tuning: every weight's gradient of the mean loss.
    model.train()
    model.zero_grad()
    loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    tensors = {"ids": ids.to(torch.int32), "labels": labels.to(torch.int32), "logits": logits[0], "logits1": logits[1], "loss": loss.detach().reshape(1)}
    for name, p in model.named_parameters():
        tensors[f"grad.{name}"] = p.grad.detach().clone()
    model.zero_grad()
    # LoRA (PEFT) with seeded non-zero A and B.
    peft_model = get_peft_model(model, LoraConfig(r=3, lora_alpha=6, lora_dropout=0.0, target_modules=TARGETS))
    seed_lora(peft_model, g, lora_key, tensors)
    peft_model.train()
    lora_loss = peft_model(input_ids=ids, labels=labels).loss
    lora_loss.backward()
    tensors["lora_loss"] = lora_loss.detach().reshape(1)
    lora_grads(peft_model, lora_key, tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "expected.safetensors"))

    base = Qwen3ForCausalLM.from_pretrained(OUT, dtype=torch.float32)
    w = llama_writer(os.path.join(OUT, "tiny-qwen3.gguf"), "qwen3", "tunekit-tiny-qwen3", layers=config.num_hidden_layers,
                     context=config.max_position_embeddings, dim=config.hidden_size, ffn=config.intermediate_size,
                     heads=config.num_attention_heads, kv_heads=config.num_key_value_heads, theta=1000000.0,
                     eps=config.rms_norm_eps, vocab=config.vocab_size)
    w.add_key_length(config.head_dim)
    w.add_value_length(config.head_dim)
    for name, t in base.state_dict().items():
        if name != "lm_head.weight":  # tied
            w.add_tensor(gguf_name(name), t.numpy().astype(np.float32))
    close(w)
    print("loss", loss.item(), "lora loss", lora_loss.item())


if __name__ == "__main__":
    main()
