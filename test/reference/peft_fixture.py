"""PEFT adapters with seeded non-zero A and B, and their gradients, keyed by the engine's names
(blk.N.<module>.lora_a / .lora_b [.grad]): shared by the tiny-model fixture generators.
"""
import torch


def lora_modules(peft_model, key):
    """(engine key, module) of every LoRA layer; key maps a PEFT module name to the engine's."""
    return [(key(name), m) for name, m in peft_model.named_modules() if hasattr(m, "lora_A") and "default" in m.lora_A]


def seed_lora(peft_model, generator: torch.Generator, key, out: dict, std: float = 0.1) -> None:
    """Fills every adapter's A and B from the generator (N(0, std)) and records them in out."""
    for k, module in lora_modules(peft_model, key):
        a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
        with torch.no_grad():
            a.copy_(torch.randn(a.shape, generator=generator) * std)
            b.copy_(torch.randn(b.shape, generator=generator) * std)
        out[f"{k}.lora_a"], out[f"{k}.lora_b"] = a.detach().clone(), b.detach().clone()


def lora_grads(peft_model, key, out: dict) -> None:
    """Records every adapter's gradients (after a backward) in out."""
    for k, module in lora_modules(peft_model, key):
        out[f"{k}.lora_a.grad"] = module.lora_A["default"].weight.grad.detach().clone()
        out[f"{k}.lora_b.grad"] = module.lora_B["default"].weight.grad.detach().clone()
