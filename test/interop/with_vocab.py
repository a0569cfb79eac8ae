"""Copies a tiny GGUF fixture (random weights, no tokenizer) and gives it a vocabulary llama.cpp can
load: byte-level BPE (<unk> <s> </s> <|endoftext|> a b ab x7 .. xN, one merge), so that node-llama-cpp runs the model on
token ids (test/interop/run.mjs compares its logits with ours). The keys named after the paths
are dropped (phi3's sliding window, which llama.cpp turns off for Phi: both sides then read the
same model). The tensors are copied byte for byte.

    python with_vocab.py IN.gguf OUT.gguf [KEY ...]
"""
import sys

import gguf


def main(src: str, dst: str, drop: list[str]) -> None:
    r = gguf.GGUFReader(src)
    arch = r.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    embed = next(t for t in r.tensors if t.name == "token_embd.weight")
    vocab = int(embed.shape[1])  # ggml order: [dim, vocab]
    field = r.get_field(f"{arch}.vocab_size")
    if field is not None:
        vocab = int(field.contents())
    w = gguf.GGUFWriter(dst, arch=arch)
    for f in r.fields.values():
        if f.name == gguf.Keys.General.ARCHITECTURE or f.name.startswith("GGUF.") or f.name in drop or f.name.startswith("tokenizer."):
            continue
        kind = f.types[0]
        w.add_key_value(f.name, f.contents(), kind, sub_type=f.types[-1] if kind == gguf.GGUFValueType.ARRAY else None)
    # Byte-level BPE with one merge: llama.cpp skips what it cannot spell (a SentencePiece
    # vocabulary would need all 256 byte tokens, more than some of these models have).
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    # <|endoftext|>: llama.cpp sets its attributes on a model named phi3.
    w.add_token_list(["<unk>", "<s>", "</s>", "<|endoftext|>", "a", "b", "ab"] + [f"x{i}" for i in range(7, vocab)])
    w.add_token_types([gguf.TokenType.UNKNOWN] + [gguf.TokenType.CONTROL] * 3 + [gguf.TokenType.NORMAL] * (vocab - 4))
    w.add_token_merges(["a b"])  # one merge: the key must be there, and gguf-py writes no empty array
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    for t in r.tensors:
        w.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for t in r.tensors:
        w.write_tensor_data(t.data)
    w.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
