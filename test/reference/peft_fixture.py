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


def record_steps(model, ids, labels, targets, key, generator: torch.Generator, out: dict, full: bool = True):
    """One batch's training references: with `full`, the loss and every weight's gradient (loss,
    grad.<name>); then PEFT's LoRA (r 3, alpha 6, no dropout) on `targets` with seeded A and B, its
    loss and gradients (lora_loss, <key>.lora_a.grad, ...). The model ends wrapped by PEFT."""
    from peft import LoraConfig, get_peft_model

    if full:
        model.train()
        model.zero_grad()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        out["loss"] = loss.detach().reshape(1)
        for name, p in model.named_parameters():
            out[f"grad.{name}"] = p.grad.detach().clone()
        model.zero_grad()
    peft_model = get_peft_model(model, LoraConfig(r=3, lora_alpha=6, lora_dropout=0.0, target_modules=targets))
    seed_lora(peft_model, generator, key, out)
    peft_model.train()
    lora_loss = peft_model(input_ids=ids, labels=labels).loss
    lora_loss.backward()
    out["lora_loss"] = lora_loss.detach().reshape(1)
    lora_grads(peft_model, key, out)
    return peft_model


def qv_key(name: str) -> str:
    """The engine's key of a PEFT q_proj / v_proj module name (blk.N.attn_q, blk.N.attn_v)."""
    return f"blk.{int(name.split('.layers.')[1].split('.')[0])}.{'attn_q' if name.endswith('q_proj') else 'attn_v'}"


def qv_lora_step(model, ids, out: dict, seed: int = 2) -> float:
    """PEFT's LoRA (r 2, alpha 4, no dropout) on q_proj and v_proj with A and B seeded from `seed`,
    one training forward and backward on `ids` as labels: records the adapters, the loss and the
    gradients in out (blk.N.attn_q.lora_a, ..., loss, ....grad); returns the loss. Wraps the model."""
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
    seed_lora(peft_model, torch.Generator().manual_seed(seed), qv_key, out)
    peft_model.train()
    loss = peft_model(input_ids=ids, labels=ids).loss
    loss.backward()
    out["loss"] = loss.detach().reshape(1)
    lora_grads(peft_model, qv_key, out)
    return loss.item()
