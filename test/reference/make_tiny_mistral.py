"""A tiny random Mistral with a sliding window of 4 tokens (hidden 40, 5 heads, 1 KV head,
vocabulary 1001), saved with save_pretrained, plus transformers' logits on 11 tokens (longer than
the window) and the LoRA loss and gradients on v/o through PEFT, for test/hf-llama.test.ts.
Run in the peers' environment:
    bench/peers/.venv/bin/python test/reference/make_tiny_mistral.py
"""
import os

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import MistralConfig, MistralForCausalLM

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-mistral")


def main() -> None:
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=1001, hidden_size=40, intermediate_size=72, num_hidden_layers=2, num_attention_heads=5,
                           num_key_value_heads=1, head_dim=8, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
                           sliding_window=4, tie_word_embeddings=False, attn_implementation="eager")
    model = MistralForCausalLM(config).eval()
    model.save_pretrained(OUT, safe_serialization=True)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 1001, (1, 11), generator=g)
    with torch.no_grad():
        logits = model(ids).logits[0]
        # The same model without the window, to show it matters.
        model.config.sliding_window = None
        full = model(ids).logits[0]
        model.config.sliding_window = 4
    peft = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, lora_dropout=0.0, target_modules=["v_proj", "o_proj"]))
    out = {"ids": ids[0].to(torch.int32), "logits": logits, "logits_no_window": full}
    for name, module in peft.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
            with torch.no_grad():
                a.copy_(torch.randn(a.shape, generator=g) * 0.2)
                b.copy_(torch.randn(b.shape, generator=g) * 0.2)
            layer = int(name.split(".layers.")[1].split(".")[0])
            key = f"blk.{layer}.{'attn_v' if name.endswith('v_proj') else 'attn_output'}"
            out[f"{key}.lora_a"], out[f"{key}.lora_b"] = a, b
    loss = peft(input_ids=ids, labels=ids).loss
    loss.backward()
    for key in [k for k in list(out) if k.endswith(".lora_a") or k.endswith(".lora_b")]:
        out[f"{key}.grad"] = out[key].grad.detach().clone()
        out[key] = out[key].detach().clone()
    out["loss"] = loss.detach().reshape(1)
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(OUT, "expected.safetensors"))


if __name__ == "__main__":
    main()
