"""PyTorch eager reference for crates/ssl-train/examples/method_step.rs: one training step
(forward, backward, optimiser, EMA, queue) of SimCLR, MoCo v2, BYOL and SimSiam on the main
job's backbone and batch, with the heads, losses and optimisers of the shipped
crates/ssl-train/configs/<method>-fmnist.yaml, written as the papers' reference code writes them
(MoCo's shuffled key batch in 8 sub-batches, an EMA by torch._foreach_lerp_ as timm's ModelEmaV3,
LARS as solo-learn's: no decay or adaptation on biases and BatchNorm).

Run with the set-up venv: `~/.cache/ssl-rs/torch-2.11.0/bin/python benches/reference/method_step.py`.
Prints one JSON line per method: method, device, batch, pytorch_step_ms (median of 10 steps
after 3), pytorch_ema_ms, pytorch_queue_ms.
"""

import copy
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

from backbone_step import Backbone
from timing import median_ms

BATCH, SIZE = 512, 14


def mlp(dims, bn, out_bn=False):
    """Linear − [BN] − ReLU − … − Linear [− BN without affine], as ssl-models' ProjectionHead."""
    layers = []
    for i in range(len(dims) - 2):
        layers += [nn.Linear(dims[i], dims[i + 1], bias=not bn)]
        layers += [nn.BatchNorm1d(dims[i + 1])] if bn else []
        layers += [nn.ReLU()]
    layers += [nn.Linear(dims[-2], dims[-1], bias=not out_bn)]
    layers += [nn.BatchNorm1d(dims[-1], affine=False)] if out_bn else []
    return nn.Sequential(*layers)


class Lars(torch.optim.Optimizer):
    """SGD with momentum on trust-ratio-scaled gradients; decay and adaptation on dim ≥ 2 only."""

    def __init__(self, params, lr, momentum=0.9, weight_decay=1e-5, eta=0.02):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if p.ndim >= 2:
                    g = g.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.norm(p), torch.norm(g)
                    if w_norm > 0 and g_norm > 0:
                        g = g.mul(group["eta"] * w_norm / g_norm)
                state = self.state[p]
                if "v" not in state:
                    state["v"] = torch.zeros_like(p)
                v = state["v"]
                v.mul_(group["momentum"]).add_(g)
                p.add_(v, alpha=-group["lr"])


def nt_xent(z1, z2, tau):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    logits = z @ z.t() / tau
    logits.fill_diagonal_(float("-inf"))
    targets = (torch.arange(2 * n) + n) % (2 * n)
    return F.cross_entropy(logits, targets)


class Ema:
    def __init__(self, online):
        self.target = copy.deepcopy(online)
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.pairs = (list(self.target.parameters()), list(online.parameters()))

    @torch.no_grad()
    def update(self, m):
        torch._foreach_lerp_(self.pairs[0], self.pairs[1], 1.0 - m)


class Encoder(nn.Module):
    def __init__(self, head):
        super().__init__()
        self.backbone = Backbone(channels_last=True)
        self.head = head

    def forward(self, x):
        return self.head(self.backbone(x))


def simclr():
    enc = Encoder(mlp([128, 256, 128], bn=True))
    opt = Lars(enc.parameters(), lr=0.8)

    def step(v1, v2):
        z = enc(torch.cat([v1, v2]))
        loss = nt_xent(z[:BATCH], z[BATCH:], 0.2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, None, None


def mocov2():
    enc = Encoder(mlp([128, 256, 128], bn=False))
    ema = Ema(enc)
    opt = Lars(enc.parameters(), lr=0.8)
    queue = F.normalize(torch.randn(4096, 128), dim=1)
    ptr = [0]

    @torch.no_grad()
    def keys(x):
        perm = torch.randperm(x.shape[0])
        k = torch.cat([ema.target(c) for c in x[perm].chunk(8)])
        return F.normalize(k[perm.argsort()], dim=1)

    @torch.no_grad()
    def enqueue(k):
        queue[ptr[0] : ptr[0] + k.shape[0]] = k
        ptr[0] = (ptr[0] + k.shape[0]) % queue.shape[0]

    def step(v1, v2):
        q = F.normalize(enc(v1), dim=1)
        k = keys(v2)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.t()], dim=1) / 0.2
        loss = F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(0.99)
        enqueue(k)

    k = F.normalize(torch.randn(BATCH, 128), dim=1)
    return step, (lambda: ema.update(0.99)), (lambda: enqueue(k))


def byol():
    online = Encoder(mlp([128, 512, 128], bn=True))
    predictor = mlp([128, 512, 128], bn=True)
    ema = Ema(online)
    opt = Lars(list(online.parameters()) + list(predictor.parameters()), lr=0.8)

    def d(p, z):
        return 2 - 2 * F.cosine_similarity(p, z, dim=1).mean()

    def step(v1, v2):
        p1, p2 = predictor(online(v1)), predictor(online(v2))
        with torch.no_grad():
            t1, t2 = ema.target(v1), ema.target(v2)
        loss = d(p1, t2) + d(p2, t1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(0.99)

    return step, (lambda: ema.update(0.99)), None


def simsiam():
    enc = Encoder(mlp([128, 512, 512, 512], bn=True, out_bn=True))
    predictor = mlp([512, 128, 512], bn=True)
    opt = torch.optim.SGD(
        [
            {"params": enc.parameters()},
            {"params": predictor.parameters(), "fix_lr": True},
        ],
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
    )

    def step(v1, v2):
        z1, z2 = enc(v1), enc(v2)
        p1, p2 = predictor(z1), predictor(z2)
        loss = -0.5 * (
            F.cosine_similarity(p1, z2.detach(), dim=1).mean()
            + F.cosine_similarity(p2, z1.detach(), dim=1).mean()
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, None, None


if __name__ == "__main__":
    torch.manual_seed(0)
    v1, v2 = torch.rand(BATCH, 1, SIZE, SIZE), torch.rand(BATCH, 1, SIZE, SIZE)
    for name, make in [("simclr", simclr), ("mocov2", mocov2), ("byol", byol), ("simsiam", simsiam)]:
        step, ema, enqueue = make()
        row = {"method": name, "device": "cpu", "batch": BATCH}
        row["pytorch_step_ms"] = median_ms(lambda: step(v1, v2))
        row["pytorch_ema_ms"] = median_ms(ema, runs=50) if ema else None
        row["pytorch_queue_ms"] = median_ms(enqueue, runs=50) if enqueue else None
        print(json.dumps(row), flush=True)
