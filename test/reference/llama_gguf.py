"""Writing a Hugging Face Llama-family model as the GGUF file llama.cpp's convert_hf_to_gguf.py would
write: its metadata keys and tensor names (and, for the "llama" architecture, the q/k row order of
interleaved RoPE). Shared by the generators of the tiny GGUF fixtures.
"""
import numpy as np
from gguf import GGUFWriter

# Hugging Face module names within a layer -> llama.cpp's.
LAYER_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
               "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
               "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
               "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm"}


def gguf_name(name: str, layer_names: dict = LAYER_NAMES) -> str:
    """llama.cpp's name for a Hugging Face tensor name (layer_names: a family's module table)."""
    if name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if name == "model.norm.weight":
        return "output_norm.weight"
    if name == "lm_head.weight":
        return "output.weight"
    layer, rest = name[len("model.layers."):].split(".", 1)
    module, kind = rest.rsplit(".", 1)
    return f"blk.{layer}.{layer_names[module]}.{kind}"


def permute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's q/k row order for interleaved RoPE (convert_hf_to_gguf.py's LlamaModel.permute)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_writer(path: str, arch: str, name: str, *, layers: int, context: int, dim: int, ffn: int, heads: int, kv_heads: int,
                 theta: float, eps: float, vocab: int, split_max_tensors: int = 0) -> GGUFWriter:
    """A writer with the architecture's shape metadata; the caller adds what is particular to it.
    split_max_tensors: write parts of that many tensors, as gguf-split does (path-0000N-of-0000M.gguf)."""
    w = GGUFWriter(path, arch=arch, split_max_tensors=split_max_tensors)
    w.add_name(name)
    w.add_block_count(layers)
    w.add_context_length(context)
    w.add_embedding_length(dim)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(theta)
    w.add_layer_norm_rms_eps(eps)
    w.add_vocab_size(vocab)
    return w


def close(w: GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
