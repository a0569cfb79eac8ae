"""A tiny random Qwen2 with YaRN RoPE scaling (rope_type "yarn", factor 4, original context 8
tokens, so that at 24 positions the extrapolated, interpolated and ramped pairs all matter, and
the attention factor 0.1·ln 4 + 1 scales every score), saved by transformers, with its logits on
fixed ids and PEFT's LoRA gradients (q and v, seeded non-zero A and B). test/hf-llama.test.ts loads
it with tunekit. The same weights are also written as the GGUF llama.cpp's converter writes for a
qwen2 model with YaRN (rope.scaling.type "yarn", factor, original_context_length): llama.cpp's
YaRN is transformers' for these parameters, so tunekit must read the file as the same model.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_tiny_yarn.py
"""
import os

import torch
from gguf import RopeScalingType
from safetensors.torch import save_file
from transformers import Qwen2Config, Qwen2ForCausalLM

from llama_gguf import close, gguf_name, llama_writer
from peft_fixture import qv_lora_step

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-yarn")
SCALING = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8}


def main() -> None:
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=32, rms_norm_eps=1e-6, rope_theta=10000.0,
                         rope_scaling=SCALING, tie_word_embeddings=False)
    model = Qwen2ForCausalLM(config).eval()
    model.save_pretrained(OUT, safe_serialization=True)
    write_gguf(model)
    ids = torch.randint(0, 128, (1, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(ids).logits[0]
    tensors = {"ids": ids[0].to(torch.int32), "logits": logits}
    loss = qv_lora_step(model, ids, tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "expected.safetensors"))
    print("attention factor", model.model.rotary_emb.attention_scaling, "loss", loss)


def write_gguf(model: Qwen2ForCausalLM) -> None:
    """The folder's model as convert_hf_to_gguf.py writes a Qwen2 with rope_scaling yarn (f32)."""
    c = model.config
    w = llama_writer(os.path.join(OUT, "tiny-yarn.gguf"), "qwen2", "tunekit-tiny-yarn", layers=c.num_hidden_layers, context=c.max_position_embeddings,
                     dim=c.hidden_size, ffn=c.intermediate_size, heads=c.num_attention_heads, kv_heads=c.num_key_value_heads,
                     theta=c.rope_parameters["rope_theta"], eps=c.rms_norm_eps, vocab=c.vocab_size)
    w.add_rope_scaling_type(RopeScalingType.YARN)
    w.add_rope_scaling_factor(SCALING["factor"])
    w.add_rope_scaling_orig_ctx_len(SCALING["original_max_position_embeddings"])
    for name, t in model.state_dict().items():
        w.add_tensor(gguf_name(name), t.float().numpy())
    close(w)


if __name__ == "__main__":
    main()
