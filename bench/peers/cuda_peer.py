"""GPU peers for `npm run bench -- cuda`: transformers + PEFT (+ bitsandbytes for QLoRA) doing the
same work as tunekit's CUDA backend, on the same GPU, in the same run.

Usage: python cuda_peer.py '<json job>'  ->  prints one JSON object
Jobs:
  {"op": "make_model", "dir", "shape": {dim, layers, ffn, heads, kv_heads, vocab, tied}, "seed"}
      A Llama of that shape with seeded random weights (transformers' own init), saved in bf16 as a
      Hugging Face folder both tunekit and the peer load: no hub is reachable from the GPU machine.
  {"op": "peft_step", "dir", "batch", "seq", "r", "qlora", "reps"}
      A LoRA (QLoRA: 4-bit NF4 base, double quant, bf16 compute) step on all seven projections:
      forward + backward + AdamW, bf16 base weights, fp32 adapters, bf16 autocast, SDPA attention.
      -> {"seconds": median, "peak_bytes": torch.cuda.max_memory_allocated()}
  {"op": "copy_bandwidth", "bytes", "reps"}
      Device-to-device copy: -> {"bytes_per_second"} (read + write counted), the NF4 dequant's limit.
  {"op": "gemm", "m", "n", "k", "reps"}
      bf16 X @ W.T with torch: -> {"seconds"}, the LoRA linear's reference.
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
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_model(job):
    from transformers import LlamaConfig, LlamaForCausalLM

    s = job["shape"]
    torch.manual_seed(job.get("seed", 0))
    config = LlamaConfig(hidden_size=s["dim"], num_hidden_layers=s["layers"], intermediate_size=s["ffn"],
                         num_attention_heads=s["heads"], num_key_value_heads=s["kv_heads"], vocab_size=s["vocab"],
                         tie_word_embeddings=s["tied"], rms_norm_eps=1e-5, rope_theta=500000.0,
                         max_position_embeddings=8192, torch_dtype="bfloat16")
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(job["dir"], safe_serialization=True)
    return {"params": sum(p.numel() for p in model.parameters())}


def peft_step(job):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    kwargs = {"torch_dtype": torch.bfloat16, "attn_implementation": "sdpa"}
    if job["qlora"]:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_use_double_quant=True,
                                                           bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(job["dir"], device_map="cuda", **kwargs)
    r = job["r"]
    model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=[
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    vocab = model.config.vocab_size
    ids = (torch.arange(job["batch"] * job["seq"], device="cuda").view(job["batch"], job["seq"]) * 7919) % vocab

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    torch.cuda.reset_peak_memory_stats()
    seconds = timed(step, job["reps"])
    return {"seconds": seconds, "peak_bytes": torch.cuda.max_memory_allocated()}


def main():
    job = json.loads(sys.argv[1])
    op = job["op"]
    if op == "make_model":
        out = make_model(job)
    elif op == "peft_step":
        out = peft_step(job)
    elif op == "copy_bandwidth":
        n = job["bytes"] // 4
        a = torch.empty(n, device="cuda")
        b = torch.empty_like(a)
        out = {"bytes_per_second": 2 * 4 * n / timed(lambda: b.copy_(a), job["reps"])}
    elif op == "gemm":
        x = torch.randn(job["m"], job["k"], device="cuda", dtype=torch.bfloat16)
        w = torch.randn(job["n"], job["k"], device="cuda", dtype=torch.bfloat16)
        out = {"seconds": timed(lambda: x @ w.T, job["reps"])}
    else:
        raise SystemExit(f"unknown op {op}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
