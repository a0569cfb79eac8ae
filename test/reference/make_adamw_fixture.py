"""AdamW fixture from torch.optim.AdamW: 3 steps on 10 parameters with given gradients, for
test/ops.test.ts. Run in the peers' environment:
    bench/peers/.venv/bin/python test/reference/make_adamw_fixture.py
"""
import json
import os

import torch

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "adamw.json")


def main() -> None:
    g = torch.Generator().manual_seed(3)
    p = torch.randn(10, generator=g)
    grads = [torch.randn(10, generator=g) for _ in range(3)]
    param = torch.nn.Parameter(p.clone())
    opt = torch.optim.AdamW([param], lr=0.01, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.1, foreach=False)
    after = []
    for grad in grads:
        param.grad = grad.clone()
        opt.step()
        after.append(param.detach().clone().tolist())
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-6, "weightDecay": 0.1,
                   "initial": p.tolist(), "grads": [x.tolist() for x in grads], "after": after}, f)


if __name__ == "__main__":
    main()
