"""A tiny random Phi-3 model (Phi3ForCausalLM: q/k/v fused in qkv_proj, gate/up fused in
gate_up_proj, a sliding window, grouped-query attention, untied head) saved by transformers, with
its logits, the full fine-tuning gradient of every weight, PEFT's LoRA gradients on the four
modules PEFT adapts in Phi-3 (qkv_proj, o_proj, gate_up_proj, down_proj; seeded non-zero A and B)
on a fixed batch, and transformers' greedy continuation. And a GGUF of the same weights as
llama.cpp's converter writes a phi3 model (attn_qkv, and gate_up as ffn_up), layer 0's two fused
matrices in Q8_0 so that splitting a quantized matrix's rows is covered, with the logits
transformers' GGUF loader gives for it (it reads no sliding window from the file: it is told).
test/hf-phi3.test.ts loads both with tunekit.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_tiny_phi3.py
"""
import os

import numpy as np
import torch
from gguf import GGMLQuantizationType, quantize
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, Phi3Config, Phi3ForCausalLM

from llama_gguf import close, gguf_name, llama_writer
from peft_fixture import record_steps

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-phi3")
TARGETS = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
# PEFT's module names -> the engine's adapter names (the fused blocks keep one adapter each).
ENGINE = {"qkv_proj": "attn_qkv", "o_proj": "attn_output", "gate_up_proj": "ffn_gate_up", "down_proj": "ffn_down"}
# Hugging Face -> llama.cpp's phi3 tensor names.
GGUF = {"self_attn.qkv_proj": "attn_qkv", "self_attn.o_proj": "attn_output", "mlp.gate_up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}



def phi3_name(name: str) -> str:
    """llama.cpp's phi3 name for a Hugging Face tensor name."""
    return gguf_name(name, GGUF)

def lora_key(name: str) -> str:
    layer = int(name.split(".layers.")[1].split(".")[0])
    return f"blk.{layer}.{ENGINE[name.split('.')[-1]]}"


def main() -> None:
    torch.manual_seed(0)
    cfg = Phi3Config(vocab_size=160, hidden_size=64, intermediate_size=80, num_hidden_layers=3, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=64, original_max_position_embeddings=64, rms_norm_eps=1e-5,
                     rope_theta=10000.0, sliding_window=5, tie_word_embeddings=False, initializer_range=0.1, pad_token_id=0,
                     bos_token_id=1, eos_token_id=2)
    model = Phi3ForCausalLM(cfg).eval()
    with torch.no_grad():  # norms away from 1 so the test sees them
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.3 * torch.randn(p.shape))
    model.save_pretrained(OUT, safe_serialization=True)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 160, (2, 12), generator=g)
    labels = ids.clone()
    labels[0, :3] = -100
    with torch.no_grad():
        logits = model(ids).logits
        greedy = model.generate(ids[:1, :5], max_new_tokens=10, do_sample=False, eos_token_id=None, pad_token_id=0)[0, 5:]
    tensors = {"ids": ids.to(torch.int32), "labels": labels.to(torch.int32), "logits": logits[0], "logits1": logits[1],
               "greedy": greedy.to(torch.int32)}
    record_steps(model, ids, labels, TARGETS, lora_key, g, tensors)

    base = Phi3ForCausalLM.from_pretrained(OUT, dtype=torch.float32).eval()
    path = os.path.join(OUT, "tiny-phi3.gguf")
    w = llama_writer(path, "phi3", "tunekit-tiny-phi3", layers=cfg.num_hidden_layers, context=cfg.max_position_embeddings,
                     dim=cfg.hidden_size, ffn=cfg.intermediate_size, heads=cfg.num_attention_heads, kv_heads=cfg.num_key_value_heads,
                     theta=10000.0, eps=cfg.rms_norm_eps, vocab=cfg.vocab_size)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_sliding_window(cfg.sliding_window)
    for name, t in base.state_dict().items():
        v = t.numpy().astype(np.float32)
        if name.startswith("model.layers.0.") and ("qkv_proj" in name or "gate_up_proj" in name):
            w.add_tensor(phi3_name(name), quantize(v, GGMLQuantizationType.Q8_0), raw_dtype=GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(phi3_name(name), v)
    close(w)
    loaded = AutoModelForCausalLM.from_pretrained(OUT, gguf_file="tiny-phi3.gguf", dtype=torch.float32, sliding_window=cfg.sliding_window,
                                                  pad_token_id=0).eval()
    with torch.no_grad():
        gguf_logits = loaded(ids).logits
    tensors["gguf_logits"], tensors["gguf_logits1"] = gguf_logits[0], gguf_logits[1]
    gap = (gguf_logits - logits).abs().max().item()
    assert 0 < gap < 0.2, f"the Q8_0 blocks change the logits by {gap}"
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "expected.safetensors"))
    print("loss", tensors["loss"].item(), "lora loss", tensors["lora_loss"].item(), "gguf vs folder logits", gap)


if __name__ == "__main__":
    main()
