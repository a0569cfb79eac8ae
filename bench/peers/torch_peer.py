"""Peer timings for the bench suites: PyTorch (and bitsandbytes) doing the same work as tunekit.

Usage: python torch_peer.py '<json job>'  ->  prints one JSON object {"seconds": median, ...}
Jobs:
  {"op": "matmul", "dtype": "bf16"|"f32", "m", "n", "k", "ta", "tb", "reps", "threads"}
      C = op(A) @ op(B) with torch.matmul (bf16 runs through oneDNN).
  {"op": "nf4_matmul", "m", "n", "k", "blocksize", "dtype", "reps", "threads"}
      Y = X @ deq(W).T with bitsandbytes.matmul_4bit on the CPU backend (W [n, k] in NF4).
  {"op": "nf4_dequant", "n", "k", "blocksize", "reps", "threads"}
      bitsandbytes.functional.dequantize_4bit of an [n, k] NF4 matrix to fp32.
  {"op": "lora", "m", "inp", "out", "r", "dtype", "reps", "threads"} and {"op": "linear", ...}
      forward + backward of x @ W.T (+ s * (x @ A.T) @ B.T) with W frozen, x and A, B requiring grad.
  {"op": "peft_step", "model_dir", "gguf"?, "targets"?, "vocab"?, "batch", "seq", "r", "dtype", "reps", "threads"}
      transformers + PEFT LoRA training step (default targets: all seven Llama projections, AdamW)
      on the model loaded from the GGUF (dequantized to fp32) or, without "gguf", the Hugging Face
      folder; bf16 via autocast; also reports peak RSS.
"""
import json
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore")
import torch  # noqa: E402


def timed(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    job = json.loads(sys.argv[1])
    torch.set_num_threads(job.get("threads", 2))
    torch.manual_seed(0)
    reps = job.get("reps", 7)
    dt = {"bf16": torch.bfloat16, "f32": torch.float32, "fp32": torch.float32}[job.get("dtype", "f32")]
    op = job["op"]
    if op == "matmul":
        m, n, k = job["m"], job["n"], job["k"]
        a = torch.randn(k, m, dtype=dt) if job["ta"] else torch.randn(m, k, dtype=dt)
        b = torch.randn(n, k, dtype=dt) if job["tb"] else torch.randn(k, n, dtype=dt)
        A = a.t() if job["ta"] else a
        B = b.t() if job["tb"] else b
        out = {"seconds": timed(lambda: torch.matmul(A, B), reps)}
    elif op in ("nf4_matmul", "nf4_dequant"):
        import bitsandbytes as bnb
        import bitsandbytes.functional as F

        n, k = job["n"], job["k"]
        w = torch.randn(n, k, dtype=torch.float32) * 0.02
        q, state = F.quantize_4bit(w, blocksize=job.get("blocksize", 64), quant_type="nf4")
        if op == "nf4_dequant":
            out = {"seconds": timed(lambda: F.dequantize_4bit(q, state, quant_type="nf4"), reps)}
        else:
            x = torch.randn(job["m"], k, dtype=dt)
            with torch.no_grad():
                out = {"seconds": timed(lambda: bnb.matmul_4bit(x, q.t(), quant_state=state), reps)}
    elif op in ("lora", "linear"):
        m, inp, o, r = job["m"], job["inp"], job["out"], job.get("r", 0)
        x = torch.randn(m, inp, dtype=dt, requires_grad=True)
        w = torch.randn(o, inp, dtype=dt) * 0.02
        a = (torch.randn(r, inp, dtype=dt) * 0.02).requires_grad_() if r else None
        b = (torch.randn(o, r, dtype=dt) * 0.02).requires_grad_() if r else None
        g = torch.randn(m, o, dtype=dt)
        s = 2.0

        def step():
            y = x @ w.t()
            if r:
                y = y + s * ((x @ a.t()) @ b.t())
            y.backward(g)
            x.grad = None
            if r:
                a.grad = None
                b.grad = None

        out = {"seconds": timed(step, reps)}
    elif op == "peft_step":
        import resource

        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        if job.get("gguf"):
            base = AutoModelForCausalLM.from_pretrained(job["model_dir"], gguf_file=job["gguf"], dtype=torch.float32)
        else:  # a Hugging Face folder (GPT-2: Conv1D weights, hence fan_in_fan_out)
            base = AutoModelForCausalLM.from_pretrained(job["model_dir"], dtype=torch.float32)
        targets = job.get("targets", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        fan_in_fan_out = base.config.model_type == "gpt2"
        model = get_peft_model(base, LoraConfig(r=job["r"], lora_alpha=2 * job["r"], lora_dropout=0.0, target_modules=targets, fan_in_fan_out=fan_in_fan_out))
        model.train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        ids = (torch.arange(job["batch"] * job["seq"]) * 7919 % job.get("vocab", 49152)).reshape(job["batch"], job["seq"])
        bf16 = job.get("dtype") == "bf16"

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            opt.step()
            opt.zero_grad()

        out = {"seconds": timed(step, reps), "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    else:
        raise SystemExit(f"unknown op {op}")
    out["torch"] = torch.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
