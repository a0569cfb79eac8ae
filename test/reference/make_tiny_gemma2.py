"""A tiny random Gemma 2 model (Gemma2ForCausalLM: what Gemma 3 has but the q/k norms and the local
RoPE base, plus soft-capping of the attention scores and of the final logits; sliding-window and
global layers alternate) saved by transformers, with its logits, the full fine-tuning gradient of
every weight, PEFT's LoRA gradients (all seven projections, seeded non-zero A and B) on a fixed
batch, and transformers' greedy continuation. The caps are set low (and the weights large) so that
both bite: without either cap the logits differ by far more than the test allows (checked here).
And a GGUF of the same weights as llama.cpp's converter writes a gemma2 model (norms as 1 + w, the
caps in gemma2.attn_logit_softcapping / final_logit_softcapping); llama.cpp scales attention by
head_dim^-½ except in the 27B, so the GGUF logits are those with query_pre_attn_scalar = head_dim.
transformers' GGUF loader must give them too (checked here; it reads neither cap, so it is told).
test/hf-gemma.test.ts loads both with tunekit.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_tiny_gemma2.py
"""
import os

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, Gemma2Config, Gemma2ForCausalLM

from llama_gguf import close, gguf_name, llama_writer
from make_tiny_gemma3 import GGUF_LAYER, TARGETS, lora_key
from peft_fixture import record_steps

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-gemma2")
ATTN_CAP, FINAL_CAP = 1.0, 5.0


def config(query_pre_attn_scalar: int, attn_cap=ATTN_CAP, final_cap=FINAL_CAP) -> Gemma2Config:
    return Gemma2Config(vocab_size=160, hidden_size=48, intermediate_size=80, num_hidden_layers=4, num_attention_heads=4,
                        num_key_value_heads=2, head_dim=24, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=10000.0,
                        sliding_window=4, query_pre_attn_scalar=query_pre_attn_scalar, attn_logit_softcapping=attn_cap,
                        final_logit_softcapping=final_cap, initializer_range=0.25, tie_word_embeddings=True, pad_token_id=0,
                        bos_token_id=2, eos_token_id=1, attn_implementation="eager")


def logits_with(state, ids, **caps):
    m = Gemma2ForCausalLM(config(16, **caps)).eval()
    m.load_state_dict(state)
    with torch.no_grad():
        return m(ids).logits


def main() -> None:
    torch.manual_seed(0)
    cfg = config(16)
    model = Gemma2ForCausalLM(cfg).eval()
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
    state = model.state_dict()
    for caps in ({"attn_cap": None}, {"final_cap": None}):  # each cap changes the logits
        gap = (logits_with(state, ids, **caps) - logits).abs().max().item() / logits.abs().max().item()
        assert gap > 0.02, f"{caps}: the cap changes the logits by only {gap}"
        print("without", caps, "normalized logit change", gap)
    tensors = {"ids": ids.to(torch.int32), "labels": labels.to(torch.int32), "logits": logits[0], "logits1": logits[1],
               "greedy": greedy.to(torch.int32)}
    record_steps(model, ids, labels, TARGETS, lora_key, g, tensors)

    # The GGUF: the same weights; llama.cpp's attention scale for gemma2 (but the 27B) is head_dim^-½.
    base = Gemma2ForCausalLM.from_pretrained(OUT, dtype=torch.float32, attn_implementation="eager").eval()
    as_llama_cpp = Gemma2ForCausalLM(config(cfg.head_dim)).eval()
    as_llama_cpp.load_state_dict(base.state_dict())
    with torch.no_grad():
        gguf_logits = as_llama_cpp(ids).logits
    tensors["gguf_logits"], tensors["gguf_logits1"] = gguf_logits[0], gguf_logits[1]
    path = os.path.join(OUT, "tiny-gemma2.gguf")
    w = llama_writer(path, "gemma2", "tunekit-tiny-gemma2", layers=cfg.num_hidden_layers, context=cfg.max_position_embeddings,
                     dim=cfg.hidden_size, ffn=cfg.intermediate_size, heads=cfg.num_attention_heads, kv_heads=cfg.num_key_value_heads,
                     theta=10000.0, eps=cfg.rms_norm_eps, vocab=cfg.vocab_size)
    w.add_key_length(cfg.head_dim)
    w.add_value_length(cfg.head_dim)
    w.add_sliding_window(cfg.sliding_window)
    w.add_attn_logit_softcapping(ATTN_CAP)
    w.add_final_logit_softcapping(FINAL_CAP)
    for name, t in base.state_dict().items():
        if name == "lm_head.weight":
            continue  # tied
        v = t.numpy().astype(np.float32)
        w.add_tensor(gguf_name(name, GGUF_LAYER), v + 1 if name.endswith("norm.weight") else v)  # convert_hf_to_gguf's norm_shift
    close(w)
    loaded = AutoModelForCausalLM.from_pretrained(OUT, gguf_file="tiny-gemma2.gguf", dtype=torch.float32, attn_implementation="eager",
                                                  query_pre_attn_scalar=cfg.head_dim, attn_logit_softcapping=ATTN_CAP,
                                                  final_logit_softcapping=FINAL_CAP).eval()
    with torch.no_grad():
        err = (loaded(ids).logits - gguf_logits).abs().max().item()
    assert err < 1e-4, f"transformers' GGUF loader disagrees by {err}"
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "expected.safetensors"))
    print("loss", tensors["loss"].item(), "lora loss", tensors["lora_loss"].item(), "gguf loader max err", err, "max |logit|", logits.abs().max().item())


if __name__ == "__main__":
    main()
