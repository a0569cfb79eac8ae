"""Sequence-classification fixture for the tiny GPT-2 (test/reference/fixtures/tiny-gpt2), for
test/trainable.test.ts: transformers' GPT2ForSequenceClassification (last non-pad token, score
without bias) with PEFT LoRA on c_attn (fan_in_fan_out, seeded non-zero A and B) trained through
it. Records the logits, the mean cross-entropy, and the gradients of the score and of every
LoRA matrix, as make_tiny_heads.py does for the tiny Llama.
Run in the peers' environment:
    bench/peers/.venv/bin/python test/reference/make_tiny_gpt2_head.py
"""
import os

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import GPT2ForSequenceClassification

HERE = os.path.dirname(__file__)
MODEL = os.path.join(HERE, "fixtures", "tiny-gpt2")
OUT = os.path.join(MODEL, "head.safetensors")
PAD = 0


def main() -> None:
    torch.manual_seed(0)
    model = GPT2ForSequenceClassification.from_pretrained(MODEL, num_labels=3, pad_token_id=PAD, dtype=torch.float32).eval()
    peft = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, lora_dropout=0.0, target_modules=["c_attn"], fan_in_fan_out=True))
    g = torch.Generator().manual_seed(7)
    out = {}
    lora = {}
    for name, module in peft.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
            with torch.no_grad():
                a.copy_(torch.randn(a.shape, generator=g) * 0.2)
                b.copy_(torch.randn(b.shape, generator=g) * 0.2)
            lora[name.split("base_model.model.")[1]] = (a, b)
    score = peft.base_model.model.score.weight
    score.requires_grad_(True)
    with torch.no_grad():
        score.copy_(torch.randn(score.shape, generator=g) * 0.3)
    lengths = torch.tensor([7, 4, 6])
    ids = torch.randint(1, 1001, (3, 7), generator=g)
    for r, n in enumerate(lengths.tolist()):
        ids[r, n:] = PAD
    labels = torch.tensor([1, 2, 0])
    res = peft(input_ids=ids, labels=labels)
    res.loss.backward()
    out.update({"ids": ids.to(torch.int32), "lengths": lengths.to(torch.int32), "labels": labels.to(torch.int32)})
    out.update({"logits": res.logits.detach().clone(), "loss": res.loss.detach().reshape(1)})
    out["head.w1"], out["head.w1.grad"] = score.detach().clone(), score.grad.detach().clone()
    for key, (a, b) in lora.items():
        out[f"{key}.lora_a"], out[f"{key}.lora_b"] = a.detach().clone(), b.detach().clone()
        out[f"{key}.lora_a.grad"], out[f"{key}.lora_b.grad"] = a.grad.detach().clone(), b.grad.detach().clone()
    save_file({k: v.contiguous() for k, v in out.items()}, OUT)


if __name__ == "__main__":
    main()
