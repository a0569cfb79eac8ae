"""Learning-rate schedule fixture from transformers' schedulers (the learning rate at each
optimizer step, as LambdaLR applies them), for test/train.test.ts. ULMFiT's slanted triangular
rate has no transformers twin; it is written here straight from Howard & Ruder (2018), eq. 3.
Run in the peers' environment:
    bench/peers/.venv/bin/python test/reference/make_schedule_fixture.py
"""
import json
import math
import os

import torch
import transformers
from transformers import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                          get_linear_schedule_with_warmup)

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "schedules.json")
LR, TOTAL, WARMUP = 3e-4, 23, 4


def lrs(make):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=LR)
    sched = make(opt)
    out = []
    for _ in range(TOTAL):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def slanted_triangular(total, cut_frac=0.1, ratio=32):
    # cut = floor(T * cut_frac) makes p reach 0 at cut / cut_frac <= T; past that the rate stays
    # at its floor lr_max / ratio (eq. 3 taken literally would go below it, even negative).
    cut = math.floor(total * cut_frac)
    out = []
    for t in range(total):
        p = t / cut if t < cut else max(0.0, 1 - (t - cut) / (cut * (1 / cut_frac - 1)))
        out.append(LR * (1 + p * (ratio - 1)) / ratio)
    return out


def main() -> None:
    fixture = {
        "transformers": transformers.__version__, "lr": LR, "totalSteps": TOTAL, "warmupSteps": WARMUP,
        "constant": lrs(lambda o: get_constant_schedule_with_warmup(o, WARMUP)),
        "linear": lrs(lambda o: get_linear_schedule_with_warmup(o, WARMUP, TOTAL)),
        "cosine": lrs(lambda o: get_cosine_schedule_with_warmup(o, WARMUP, TOTAL)),
        "slanted-triangular": slanted_triangular(TOTAL),
    }
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=1)


if __name__ == "__main__":
    main()
