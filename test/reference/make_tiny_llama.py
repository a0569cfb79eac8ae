"""A tiny random Llama in Hugging Face format (odd sizes: hidden 40, 5 heads, 1 KV head,
vocabulary 1001), saved with save_pretrained, plus transformers' logits on fixed token ids and
PEFT's loss and LoRA gradients (all seven projections, seeded non-zero A and B). test/hf-llama.test.ts
loads the folder with tunekit and compares. Also saves a bf16 copy of the weights.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_tiny_llama.py
"""
import os

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-llama")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GGUF_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
              "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}


def main() -> None:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=1001, hidden_size=40, intermediate_size=72, num_hidden_layers=2, num_attention_heads=5,
                         num_key_value_heads=1, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # norms away from 1 so the test sees them
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape))
    model.save_pretrained(OUT, safe_serialization=True)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 1001, (2, 12), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100
    with torch.no_grad():
        logits = model(ids).logits
    peft_model = get_peft_model(model, LoraConfig(r=3, lora_alpha=6, lora_dropout=0.0, target_modules=TARGETS))
    lora = {}
    for name, module in peft_model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
            with torch.no_grad():
                a.copy_(torch.randn(a.shape, generator=g) * 0.1)
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            layer = int(name.split(".layers.")[1].split(".")[0])
            lora[f"blk.{layer}.{GGUF_NAMES[name.split('.')[-1]]}"] = (a, b)
    peft_model.train()
    loss = peft_model(input_ids=ids, labels=labels).loss
    loss.backward()
    tensors = {"ids": ids.to(torch.int32), "labels": labels.to(torch.int32), "logits": logits[0], "logits1": logits[1],
               "loss": loss.detach().reshape(1)}
    for key, (a, b) in lora.items():
        tensors[f"{key}.lora_a"] = a.detach().clone()
        tensors[f"{key}.lora_b"] = b.detach().clone()
        tensors[f"{key}.lora_a.grad"] = a.grad.detach().clone()
        tensors[f"{key}.lora_b.grad"] = b.grad.detach().clone()
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "expected.safetensors"))
    print("loss", loss.item())


def qwen2() -> None:
    """A tiny random Qwen2 (q/k/v biases), with transformers' logits."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-qwen2")
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=1001, hidden_size=48, intermediate_size=64, num_hidden_layers=2, num_attention_heads=6,
                         num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=1000000.0,
                         tie_word_embeddings=True)
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.5 * torch.randn(p.shape))
    model.save_pretrained(out, safe_serialization=True)
    ids = torch.randint(0, 1001, (1, 10), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model(ids).logits[0]
    save_file({"ids": ids[0].to(torch.int32), "logits": logits.contiguous()}, os.path.join(out, "expected.safetensors"))


def full_ft() -> None:
    """Full fine-tuning gradients of every weight of the tiny Llama (same batch), by HF name."""
    model = LlamaForCausalLM.from_pretrained(OUT, dtype=torch.float32)
    model.train()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 1001, (2, 12), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100
    loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    tensors = {"loss": loss.detach().reshape(1)}
    for name, p in model.named_parameters():
        tensors[f"grad.{name}"] = p.grad.detach().clone()
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "expected_full.safetensors"))


def gpt2() -> None:
    """A tiny random GPT-2 with transformers' logits."""
    from transformers import GPT2Config, GPT2LMHeadModel

    out = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-gpt2")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=1001, n_positions=32, n_embd=40, n_layer=2, n_head=5)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "ln_" in name:
                p.add_(0.2 * torch.randn(p.shape))
    model.save_pretrained(out, safe_serialization=True)
    ids = torch.randint(0, 1001, (1, 14), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = model(ids).logits[0]
    save_file({"ids": ids[0].to(torch.int32), "logits": logits.contiguous()}, os.path.join(out, "expected.safetensors"))


if __name__ == "__main__":
    main()
    qwen2()
    full_ft()
    gpt2()
