"""A small byte-level BPE tokenizer (trained here on a few sentences) saved as a Hugging Face
folder (tokenizer.json, tokenizer_config.json with a ChatML template), plus transformers' encodings
of some texts and a rendered chat. test/hf-tokenizer.test.ts loads the folder with tunekit.

Run from the repository root in the peers' environment (bench/peers/setup.sh):
    bench/peers/.venv/bin/python test/reference/make_tiny_tokenizer.py
"""
import json
import os

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tiny-tokenizer")
CORPUS = ["The capital of France is Paris.", "Tokenizers split text into pieces.", "Numbers like 12345 and émigré café.",
          "Hello world! How are you today?", "def f(x): return x * 2"]
TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
            "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def main() -> None:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<|im_end|>")
    fast.chat_template = TEMPLATE
    fast.save_pretrained(OUT)
    texts = ["The capital of France is Paris.", "naïve 42 <|im_start|>user\nhi<|im_end|>", "  spaces\tand\nnewlines "]
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    fixture = {"cases": [{"text": t, "ids": fast.encode(t), "decoded": fast.decode(fast.encode(t))} for t in texts],
               "chat": chat, "rendered": fast.apply_chat_template(chat, tokenize=False, add_generation_prompt=True),
               "eos": fast.eos_token, "eos_id": fast.eos_token_id, "vocab": len(fast)}
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
