"""A SentencePiece-style GGUF vocabulary (tokenizer.ggml.model = "llama", as llama.cpp writes
Llama 2 / Mistral files): a tiny BPE model trained by the sentencepiece package with byte
fallback, its pieces, scores and token types written to a metadata-only GGUF, plus the ids and
decodings transformers gives from that file. test/tokenizer.test.ts must agree exactly.
Run in the peers' environment (pip install sentencepiece):
    bench/peers/.venv/bin/python test/reference/make_spm_gguf_fixture.py
"""
import io
import json
import os
import tempfile

import gguf
import sentencepiece as spm
from transformers import AutoTokenizer

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tokenizer")
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A tokenizer splits text into pieces; the model sees their ids.",
    "Hello world, hello tokens! Numbers like 12345 and 3.14 appear too.",
    "Fine-tuning a language model needs data, a loss and an optimizer.",
] * 20
TEXTS = [
    "Hello world",
    "The lazy dog jumps over the quick brown fox.",
    "  two leading spaces and trailing  ",
    "Unseen letters: é ö ✓ 日本 — fall back to bytes",
    "tokens\nnew lines\tand tabs",
    "<s>not special in text</s>",
]


def main() -> None:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS), model_writer=model, model_type="bpe", vocab_size=400,
                                   byte_fallback=True, character_coverage=1.0, split_digits=True, add_dummy_prefix=True,
                                   allow_whitespace_only_pieces=True, remove_extra_whitespaces=False, normalization_rule_name="identity")
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 1)
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "spm.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(sp.unk_id())
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    tok = AutoTokenizer.from_pretrained(tmp, gguf_file="spm.gguf")
    cases = []
    for text in TEXTS:
        ids = tok.encode(text)
        cases.append({"text": text, "ids": ids, "ids_plain": tok.encode(text, add_special_tokens=False), "decoded": tok.decode(ids, skip_special_tokens=True)})
    fixture = {"tokens": tokens, "scores": scores, "types": types, "unk": sp.unk_id(), "bos": sp.bos_id(), "eos": sp.eos_id(), "cases": cases}
    with open(os.path.join(OUT, "spm.json"), "w") as f:
        json.dump(fixture, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
