"""A tiny random Gemma 3 text model (Gemma3ForCausalLM: √dim embedding scale, (1 + w) RMSNorms with
pre- and post-norms around attention and MLP, GeGLU, per-head q/k norms, five sliding-window layers
of window 4 then a global one with their own RoPE bases, query_pre_attn_scalar unlike head_dim,
tied embeddings) saved by transformers, with its logits, the full fine-tuning gradient of every
weight, PEFT's LoRA gradients (all seven projections, seeded non-zero A and B) on a fixed batch,
and transformers' greedy continuation. And a GGUF of the same weights the way llama.cpp's converter
writes a gemma3 model (norms stored as 1 + w, no q/k permutation); llama.cpp fixes the attention
scale at head_dim^-½ for it, so the GGUF logits are those of the same weights with
query_pre_attn_scalar = head_dim, and transformers' GGUF loader must give them too (checked here).
test/hf-gemma3.test.ts loads both with tunekit.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_tiny_gemma3.py
"""
import os
import tempfile

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig

from llama_gguf import LAYER_NAMES, close, gguf_name, llama_writer
from peft_fixture import lora_grads, seed_lora

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-gemma3")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Gemma's norms as llama.cpp names them (post_attention_layernorm is the attention's post-norm here).
GGUF_LAYER = {**LAYER_NAMES, "post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
              "post_feedforward_layernorm": "post_ffw_norm"}


def config(query_pre_attn_scalar: int) -> Gemma3TextConfig:
    return Gemma3TextConfig(vocab_size=160, hidden_size=48, intermediate_size=80, num_hidden_layers=6, num_attention_heads=4,
                            num_key_value_heads=2, head_dim=24, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=1000000.0,
                            rope_local_base_freq=10000.0, sliding_window=4, query_pre_attn_scalar=query_pre_attn_scalar,
                            tie_word_embeddings=True, pad_token_id=0, bos_token_id=2, eos_token_id=1)


def lora_key(name: str) -> str:
    layer = int(name.split(".layers.")[1].split(".")[0])
    return f"blk.{layer}.{GGUF_LAYER['.'.join(name.split('.')[-2:])]}"


def main() -> None:
    torch.manual_seed(0)
    cfg = config(16)
    model = Gemma3ForCausalLM(cfg).eval()
    with torch.no_grad():  # norms away from 0 (Gemma's scale is 1 + w) so the test sees them
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(0.3 * torch.randn(p.shape))
    model.save_pretrained(OUT, safe_serialization=True)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 160, (2, 12), generator=g)
    labels = ids.clone()
    labels[0, :3] = -100
    with torch.no_grad():
        logits = model(ids).logits
        greedy = model.generate(ids[:1, :5], max_new_tokens=10, do_sample=False, eos_token_id=None, pad_token_id=0)[0, 5:]
    model.train()
    model.zero_grad()
    loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    tensors = {"ids": ids.to(torch.int32), "labels": labels.to(torch.int32), "logits": logits[0], "logits1": logits[1],
               "loss": loss.detach().reshape(1), "greedy": greedy.to(torch.int32)}
    for name, p in model.named_parameters():
        tensors[f"grad.{name}"] = p.grad.detach().clone()
    model.zero_grad()
    peft_model = get_peft_model(model, LoraConfig(r=3, lora_alpha=6, lora_dropout=0.0, target_modules=TARGETS))
    seed_lora(peft_model, g, lora_key, tensors)
    peft_model.train()
    lora_loss = peft_model(input_ids=ids, labels=labels).loss
    lora_loss.backward()
    tensors["lora_loss"] = lora_loss.detach().reshape(1)
    lora_grads(peft_model, lora_key, tensors)

    # The GGUF: the same weights; llama.cpp's attention scale for gemma3 is head_dim^-½.
    base = Gemma3ForCausalLM.from_pretrained(OUT, dtype=torch.float32).eval()
    as_llama_cpp = Gemma3ForCausalLM(config(cfg.head_dim)).eval()
    as_llama_cpp.load_state_dict(base.state_dict())
    with torch.no_grad():
        gguf_logits = as_llama_cpp(ids).logits
    tensors["gguf_logits"], tensors["gguf_logits1"] = gguf_logits[0], gguf_logits[1]
    path = os.path.join(OUT, "tiny-gemma3.gguf")
    w = llama_writer(path, "gemma3", "tunekit-tiny-gemma3", layers=cfg.num_hidden_layers, context=cfg.max_position_embeddings,
                     dim=cfg.hidden_size, ffn=cfg.intermediate_size, heads=cfg.num_attention_heads, kv_heads=cfg.num_key_value_heads,
                     theta=1000000.0, eps=cfg.rms_norm_eps, vocab=cfg.vocab_size)
    w.add_key_length(cfg.head_dim)
    w.add_value_length(cfg.head_dim)
    w.add_sliding_window(cfg.sliding_window)
    for name, t in base.state_dict().items():
        if name == "lm_head.weight":
            continue  # tied
        v = t.numpy().astype(np.float32)
        w.add_tensor(gguf_name(name, GGUF_LAYER), v + 1 if name.endswith("norm.weight") else v)  # convert_hf_to_gguf's norm_shift
    close(w)
    # transformers' own GGUF loader (it subtracts the 1 again) must agree with the folder. It leaves
    # query_pre_attn_scalar at its default, 256, which is head_dim in every Gemma 3 but the 27B:
    # here it is told head_dim, as llama.cpp computes it.
    loaded = AutoModelForCausalLM.from_pretrained(OUT, gguf_file="tiny-gemma3.gguf", dtype=torch.float32,
                                                  query_pre_attn_scalar=cfg.head_dim).eval()
    with torch.no_grad():
        err = (loaded(ids).logits - gguf_logits).abs().max().item()
    assert err < 1e-4, f"transformers' GGUF loader disagrees by {err}"
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "expected.safetensors"))
    print("loss", loss.item(), "lora loss", lora_loss.item(), "gguf loader max err", err)


if __name__ == "__main__":
    main()
