"""LoRA step fixture for the tiny GPT-2 (test/reference/fixtures/tiny-gpt2): PEFT on c_attn, c_proj
(attention and MLP) and c_fc with seeded non-zero A and B, a batch of two rows with some labels
-100, then the loss and every adapter gradient, and full fine-tuning's gradient of every weight on the
same batch, for test/hf-llama.test.ts (GPT-2 part).
Run in the peers' environment:
    bench/peers/.venv/bin/python test/reference/make_tiny_gpt2_lora.py
"""
import os

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import GPT2LMHeadModel

HERE = os.path.dirname(__file__)
MODEL = os.path.join(HERE, "fixtures", "tiny-gpt2")
OUT = os.path.join(MODEL, "lora.safetensors")


def main() -> None:
    model = GPT2LMHeadModel.from_pretrained(MODEL, dtype=torch.float32).eval()
    peft = get_peft_model(model, LoraConfig(r=3, lora_alpha=6, lora_dropout=0.0, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True))
    g = torch.Generator().manual_seed(5)
    adapters = {}
    for name, module in peft.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
            with torch.no_grad():
                a.copy_(torch.randn(a.shape, generator=g) * 0.2)
                b.copy_(torch.randn(b.shape, generator=g) * 0.2)
            key = name.split("base_model.model.")[1]
            adapters[key] = (a, b)
    ids = torch.randint(0, 1001, (2, 12), generator=g)
    labels = ids.clone()
    labels[1, :5] = -100
    loss = peft(input_ids=ids, labels=labels).loss
    loss.backward()
    out = {"ids": ids.to(torch.int32), "labels": labels.to(torch.int32), "loss": loss.detach().reshape(1)}
    for key, (a, b) in adapters.items():
        out[f"{key}.lora_a"], out[f"{key}.lora_b"] = a.detach().clone(), b.detach().clone()
        out[f"{key}.lora_a.grad"], out[f"{key}.lora_b.grad"] = a.grad.detach().clone(), b.grad.detach().clone()
    save_file({k: v.contiguous() for k, v in out.items()}, OUT)
    # Full fine-tuning on the same batch: the gradient of every weight (wte collects the tied head's too).
    full = GPT2LMHeadModel.from_pretrained(MODEL, dtype=torch.float32).eval()
    full_loss = full(input_ids=ids, labels=labels).loss
    full_loss.backward()
    grads = {f"{name}.grad": p.grad.detach().clone() for name, p in full.named_parameters()}
    grads["full_loss"] = full_loss.detach().reshape(1)
    save_file({k: v.contiguous() for k, v in grads.items()}, os.path.join(MODEL, "full.safetensors"))


if __name__ == "__main__":
    main()
