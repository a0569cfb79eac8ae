"""The `dist` suite's peer: PyTorch DistributedDataParallel with ZeroRedundancyOptimizer (ZeRO
stage 1: AdamW state sharded over the ranks) over gloo, on the same model, shapes and rows per rank
as tunekit's ranks (bench/dist-worker.mjs), one thread per rank.

python ddp_peer.py '{"model_dir", "gguf", "method": "lora"|"full", "r", "world", "batch", "seq", "reps"}'
prints one JSON line: median step seconds, optimizer-state bytes and peak RSS per rank.
"""
import json
import os
import resource
import sys
import time


def rank_main(rank, job, port, results):
    import torch
    import torch.distributed as dist
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)
    world = job["world"]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model = AutoModelForCausalLM.from_pretrained(job["model_dir"], gguf_file=job["gguf"], dtype=torch.float32)
    if job["method"] == "lora":
        from peft import LoraConfig, get_peft_model

        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        model = get_peft_model(model, LoraConfig(r=job["r"], lora_alpha=2 * job["r"], lora_dropout=0.0, target_modules=targets))
    model.train()
    ddp = DistributedDataParallel(model) if world > 1 else model
    params = [p for p in model.parameters() if p.requires_grad]
    opt = ZeroRedundancyOptimizer(params, optimizer_class=torch.optim.AdamW, lr=1e-5) if world > 1 else torch.optim.AdamW(params, lr=1e-5)
    per = job["batch"] // world
    rows = torch.arange(job["batch"] * job["seq"]).reshape(job["batch"], job["seq"]) * 7919 % 49152
    ids = rows[rank * per:(rank + 1) * per]
    times = []
    for i in range(job["reps"] + 1):
        dist.barrier()
        t0 = time.perf_counter()
        loss = ddp(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if i > 0:
            times.append(time.perf_counter() - t0)
    state = sum(t.numel() * t.element_size() for s in opt.optim.state.values() for t in s.values() if torch.is_tensor(t) and t.dim() > 0) if world > 1 \
        else sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values() if torch.is_tensor(t) and t.dim() > 0)
    times.sort()
    results[rank] = {"seconds": times[len(times) // 2], "optimizer_bytes": state, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    dist.destroy_process_group()


def main():
    import torch.multiprocessing as mp

    job = json.loads(sys.argv[1])
    port = 29500 + os.getpid() % 1000
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(rank_main, args=(job, port, results), nprocs=job["world"], join=True)
        out = [results[r] for r in range(job["world"])]
    import torch

    print(json.dumps({"seconds": max(r["seconds"] for r in out), "optimizer_bytes": [r["optimizer_bytes"] for r in out],
                      "peak_rss": [r["peak_rss"] for r in out], "torch": torch.__version__}))


if __name__ == "__main__":
    main()
