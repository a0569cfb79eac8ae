"""A tiny Llama-architecture GGUF whose matrices are K-quants (and Q5_0 / Q5_1 / Q8_0), the mix a
Q4_K_M or Q5_K_M file holds: token_embd and output Q6_K, attn_q Q4_K, attn_k Q5_K, attn_v Q3_K,
attn_output Q2_K, ffn_gate Q5_0, ffn_up Q5_1 (layer 0) / Q8_0 (layer 1), ffn_down Q6_K; norms F32.
The blocks are random bytes with small fp16 super-block scales (gguf-py quantizes no K-quant), so
every bit of every field takes part. transformers' GGUF loader (which dequantizes with gguf-py)
gives the expected logits; test/kquants.test.ts loads the file with tunekit and compares.

Run in the peers' environment:
    bench/peers/.venv/bin/python test/reference/make_tiny_kquant_gguf.py
"""
import os

import numpy as np
import torch
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter
from gguf.quants import quantize
from safetensors.numpy import save_file
from transformers import AutoModelForCausalLM

DIR = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-kquant")
DIM, FFN, HEADS, KV_HEADS, LAYERS, VOCAB = 256, 256, 4, 2, 2, 256
# bytes per 256-weight block, offsets of its fp16 scales
KQ = {T.Q2_K: (84, [80, 82]), T.Q3_K: (110, [108]), T.Q4_K: (144, [0, 2]), T.Q5_K: (176, [0, 2]), T.Q6_K: (210, [208])}


def tensor(rng, rows, cols, qtype):
    if qtype in KQ:
        size, scales = KQ[qtype]
        blocks = rng.integers(0, 256, size=(rows * cols // 256, size), dtype=np.uint8)
        for at in scales:  # small scales: decoded weights of a few hundredths
            f16 = (rng.uniform(2e-5, 2e-4, size=blocks.shape[0]) * rng.choice([-1, 1], size=blocks.shape[0])).astype(np.float16)
            blocks[:, at:at + 2] = f16.view(np.uint8).reshape(-1, 2)
        return blocks.reshape(rows, cols // 256 * size)
    return quantize((rng.standard_normal((rows, cols)) * 0.05).astype(np.float32), qtype)


def main() -> None:
    os.makedirs(DIR, exist_ok=True)
    rng = np.random.default_rng(5)
    path = os.path.join(DIR, "tiny-kquant.gguf")
    w = GGUFWriter(path, arch="llama")
    w.add_name("tunekit-tiny-kquant")
    w.add_block_count(LAYERS)
    w.add_context_length(64)
    w.add_embedding_length(DIM)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(VOCAB)
    head = DIM // HEADS
    w.add_tensor("token_embd.weight", tensor(rng, VOCAB, DIM, T.Q6_K), raw_dtype=T.Q6_K)
    for layer in range(LAYERS):
        p = f"blk.{layer}."
        w.add_tensor(p + "attn_norm.weight", (1 + 0.1 * rng.standard_normal(DIM)).astype(np.float32))
        w.add_tensor(p + "ffn_norm.weight", (1 + 0.1 * rng.standard_normal(DIM)).astype(np.float32))
        for name, rows, cols, qtype in [
            ("attn_q", DIM, DIM, T.Q4_K), ("attn_k", KV_HEADS * head, DIM, T.Q5_K), ("attn_v", KV_HEADS * head, DIM, T.Q3_K),
            ("attn_output", DIM, DIM, T.Q2_K), ("ffn_gate", FFN, DIM, T.Q5_0), ("ffn_up", FFN, DIM, T.Q5_1 if layer == 0 else T.Q8_0),
            ("ffn_down", DIM, FFN, T.Q6_K),
        ]:
            w.add_tensor(p + name + ".weight", tensor(rng, rows, cols, qtype), raw_dtype=qtype)
    w.add_tensor("output_norm.weight", (1 + 0.1 * rng.standard_normal(DIM)).astype(np.float32))
    w.add_tensor("output.weight", tensor(rng, VOCAB, DIM, T.Q6_K), raw_dtype=T.Q6_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    ids = torch.tensor([[1, 17, 200, 3, 99, 42, 7, 255, 128, 64, 5, 31]])
    model = AutoModelForCausalLM.from_pretrained(DIR, gguf_file="tiny-kquant.gguf", dtype=torch.float32)
    with torch.no_grad():
        logits = model(ids).logits[0].numpy()
    save_file({"ids": ids[0].numpy().astype(np.int32), "logits": np.ascontiguousarray(logits.astype(np.float32))},
              os.path.join(DIR, "expected.safetensors"))
    print("logits std", logits.std(), "max", np.abs(logits).max())


if __name__ == "__main__":
    main()
