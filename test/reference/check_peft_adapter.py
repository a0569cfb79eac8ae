"""Loads a base model plus a PEFT adapter folder written by tunekit with transformers + peft (or,
with adapter "-", a merged model folder alone), and compares the logits with the ones tunekit
computed (fp32; relative error = max |diff| / max |ref|).
Called by test/interop/run.mjs (`npm run test:interop`), in the peers' environment:
    python check_peft_adapter.py <base folder> <gguf file name or -> <adapter folder or -> <ours.json>
Exits 1 when the relative error is 1e-4 or more (or the adapter makes no difference).
"""
import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM


def main() -> None:
    base_dir, gguf, adapter, ours_file = sys.argv[1:5]
    kwargs = {"gguf_file": gguf} if gguf != "-" else {}
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, **kwargs)
    model = PeftModel.from_pretrained(base, adapter) if adapter != "-" else base
    model.eval()
    with open(ours_file) as f:
        ours = json.load(f)
    ids = torch.tensor([ours["ids"]])
    with torch.no_grad():
        ref = model(input_ids=ids).logits[0]
    got = torch.tensor(ours["logits"]).reshape(ref.shape)
    rel = ((got - ref).abs().max() / ref.abs().max()).item()
    if adapter == "-":
        print(json.dumps({"model": base_dir, "relErr": rel}))
        sys.exit(0 if rel < 1e-4 else 1)
    # The adapter must matter: its effect is far larger than the error.
    with model.disable_adapter(), torch.no_grad():
        without = model(input_ids=ids).logits[0]
    effect = ((without - ref).abs().max() / ref.abs().max()).item()
    print(json.dumps({"adapter": adapter, "relErr": rel, "adapterEffect": effect}))
    sys.exit(0 if rel < 1e-4 and effect > 100 * rel else 1)


if __name__ == "__main__":
    main()
