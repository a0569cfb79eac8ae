"""A tiny random Gemma 3 with its vision tower (Gemma3ForConditionalGeneration, as the 4B, 12B
and 27B folders are) saved by transformers: on text alone its language model is Gemma 3's text
model, and tunekit loads that part. Its logits and greedy continuation on a text-only batch, and
PEFT's LoRA gradients on the language model's seven projections (target_modules as a regex over
language_model, so that the vision tower's own q_proj/k_proj/v_proj are left alone).
test/hf-gemma.test.ts loads it.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_tiny_gemma3_mm.py
"""
import os

import torch
from safetensors.torch import save_file
from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3TextConfig, SiglipVisionConfig

from make_tiny_gemma3 import lora_key
from peft_fixture import record_steps

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-gemma3-mm")
# PEFT's target for the language model's projections only (tunekit's PEFT export writes the same).
TARGET = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def main() -> None:
    torch.manual_seed(0)
    text = Gemma3TextConfig(vocab_size=160, hidden_size=48, intermediate_size=80, num_hidden_layers=3, num_attention_heads=4,
                            num_key_value_heads=2, head_dim=24, max_position_embeddings=64, rms_norm_eps=1e-6, sliding_window=4,
                            query_pre_attn_scalar=24, rope_theta=1000000.0, rope_local_base_freq=10000.0,
                            layer_types=["sliding_attention", "sliding_attention", "full_attention"])
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=28,
                                patch_size=14)
    cfg = Gemma3Config(text_config=text.to_dict(), vision_config=vision.to_dict(), mm_tokens_per_image=4, image_token_index=159,
                       boi_token_index=157, eoi_token_index=158, pad_token_id=0, bos_token_id=2, eos_token_id=1)
    model = Gemma3ForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "language_model" in name and "norm" in name:
                p.copy_(0.3 * torch.randn(p.shape))
    model.save_pretrained(OUT, safe_serialization=True)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 150, (2, 12), generator=g)
    labels = ids.clone()
    labels[0, :3] = -100
    with torch.no_grad():
        logits = model(input_ids=ids).logits
        greedy = model.generate(ids[:1, :5], max_new_tokens=10, do_sample=False, eos_token_id=None, pad_token_id=0)[0, 5:]
    tensors = {"ids": ids.to(torch.int32), "labels": labels.to(torch.int32), "logits": logits[0], "logits1": logits[1],
               "greedy": greedy.to(torch.int32)}
    peft_model = record_steps(model, ids, labels, TARGET, lora_key, g, tensors, full=False)
    names = [n for n, m in peft_model.named_modules() if hasattr(m, "lora_A")]
    assert names and all("language_model" in n for n in names), names
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "expected.safetensors"))
    print("lora loss", tensors["lora_loss"].item(), "adapted modules", len(names), names[0])


if __name__ == "__main__":
    main()
