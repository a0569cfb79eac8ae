"""Classification-head fixtures on the tiny Llama (test/reference/fixtures/tiny-llama), for
test/heads.test.ts, with LoRA (PEFT, q/v, seeded non-zero A and B) trained through each head:
  seq_last   transformers' LlamaForSequenceClassification (last non-pad token, score without bias)
  seq_mlp    mean pooling over the real tokens, Linear -> tanh -> Linear (RoBERTa-style), in torch
  token      a per-token Linear with bias over LlamaModel's hidden states (padding labelled -100)
Each records logits, the mean cross-entropy, and the gradients of the head and of every LoRA matrix.
Run in the peers' environment:
    bench/peers/.venv/bin/python test/reference/make_tiny_heads.py
"""
import os

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaForSequenceClassification

HERE = os.path.dirname(__file__)
MODEL = os.path.join(HERE, "fixtures", "tiny-llama")
OUT = os.path.join(HERE, "fixtures", "tiny-heads.safetensors")
PAD = 0
NAMES = {"q_proj": "attn_q", "v_proj": "attn_v"}


def main() -> None:
    torch.manual_seed(0)
    model = LlamaForSequenceClassification.from_pretrained(MODEL, num_labels=3, pad_token_id=PAD, dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
    g = torch.Generator().manual_seed(3)
    lora = {}
    for name, module in peft.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
            with torch.no_grad():
                a.copy_(torch.randn(a.shape, generator=g) * 0.2)
                b.copy_(torch.randn(b.shape, generator=g) * 0.2)
            layer = int(name.split(".layers.")[1].split(".")[0])
            lora[f"blk.{layer}.{NAMES[name.split('.')[-1]]}"] = (a, b)
    score = peft.base_model.model.score.weight
    score.requires_grad_(True)
    with torch.no_grad():
        score.copy_(torch.randn(score.shape, generator=g) * 0.3)
    lengths = torch.tensor([6, 4, 5])
    ids = torch.randint(1, 1001, (3, 6), generator=g)
    for r, n in enumerate(lengths.tolist()):
        ids[r, n:] = PAD
    labels = torch.tensor([2, 0, 1])
    out = {"ids": ids.to(torch.int32), "lengths": lengths.to(torch.int32), "labels": labels.to(torch.int32), "score": score.detach().clone()}
    for key, (a, b) in lora.items():
        out[f"{key}.lora_a"], out[f"{key}.lora_b"] = a.detach().clone(), b.detach().clone()

    def record(prefix, logits, loss, head):
        peft.zero_grad()
        for p in head.values():
            p.grad = None
        loss.backward()
        out[f"{prefix}.logits"] = logits.detach().clone()
        out[f"{prefix}.loss"] = loss.detach().reshape(1)
        for k, p in head.items():
            out[f"{prefix}.{k}"] = p.detach().clone()
            out[f"{prefix}.{k}.grad"] = p.grad.detach().clone()
        for key, (a, b) in lora.items():
            out[f"{prefix}.{key}.lora_a.grad"] = a.grad.detach().clone()
            out[f"{prefix}.{key}.lora_b.grad"] = b.grad.detach().clone()

    # 1. transformers' sequence classification (score has no bias).
    res = peft(input_ids=ids, labels=labels)
    record("seq_last", res.logits, res.loss, {"w1": score})
    # 2. mean pooling + tanh MLP on LlamaModel's hidden states.
    backbone = peft.base_model.model.model
    w1 = (torch.randn(7, 40, generator=g) * 0.2).requires_grad_(True)
    b1 = (torch.randn(7, generator=g) * 0.1).requires_grad_(True)
    w2 = (torch.randn(3, 7, generator=g) * 0.3).requires_grad_(True)
    b2 = (torch.randn(3, generator=g) * 0.1).requires_grad_(True)
    h = backbone(input_ids=ids).last_hidden_state
    mask = (torch.arange(6)[None, :] < lengths[:, None]).float()
    pooled = (h * mask[..., None]).sum(1) / lengths[:, None].float()
    logits = torch.tanh(pooled @ w1.T + b1) @ w2.T + b2
    record("seq_mlp", logits, torch.nn.functional.cross_entropy(logits, labels), {"w1": w1, "b1": b1, "w2": w2, "b2": b2})
    # 3. token classification.
    tw = (torch.randn(4, 40, generator=g) * 0.3).requires_grad_(True)
    tb = (torch.randn(4, generator=g) * 0.1).requires_grad_(True)
    tlabels = torch.randint(0, 4, (3, 6), generator=g)
    tlabels[mask == 0] = -100
    h = backbone(input_ids=ids).last_hidden_state
    logits = h @ tw.T + tb
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 4), tlabels.reshape(-1), ignore_index=-100)
    out["token.labels"] = tlabels.to(torch.int32)
    record("token", logits.reshape(-1, 4), loss, {"w1": tw, "b1": tb})
    save_file({k: v.contiguous() for k, v in out.items()}, OUT)


if __name__ == "__main__":
    main()
