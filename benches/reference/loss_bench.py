"""PyTorch eager reference of `cargo xtask bench-loss`: each loss written the way its paper's
reference code writes it, timed forward + backward on the same shapes as
`benches/src/loss_cases.rs`. Prints one JSON object per line: loss, n, dim, device, pytorch_ms.

Run by the xtask with the set-up venv's python and the same allocator and thread settings as
the Rust side; by hand:
`~/.cache/ssl-rs/torch-2.11.0/bin/python benches/reference/loss_bench.py [MAX_N]`.
"""

import json
import sys

import torch
import torch.nn.functional as F

from timing import median_ms

DIM, QUEUE, PROTOTYPES, TAU = 128, 65536, 3000, 0.1
# The dense reference has no tiled form; beyond this N its [2N, 2N] logits and their
# gradients would not fit in this machine's memory (16 GiB at 16,384).
DENSE_MAX_N = 4096


def nt_xent(z1, z2):
    """SimCLR: normalise, one [2N, 2N] matmul, mask the diagonal, cross-entropy."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.t() / TAU
    logits.fill_diagonal_(float("-inf"))
    n = z1.shape[0]
    targets = (torch.arange(2 * n, device=z.device) + n) % (2 * n)
    return F.cross_entropy(logits, targets)


def info_nce_queue(q, k, queue):
    """MoCo (facebookresearch/moco builder.py): positive logit, queue logits, cross-entropy."""
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
    l_neg = torch.einsum("nc,kc->nk", q, F.normalize(queue, dim=1))
    logits = torch.cat([l_pos, l_neg], dim=1) / TAU
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))


def clip(x, y, logit_scale):
    """OpenCLIP ClipLoss: scaled cosine logits, cross-entropy both ways."""
    x, y = F.normalize(x, dim=1), F.normalize(y, dim=1)
    scale = logit_scale.clamp(max=torch.log(torch.tensor(100.0))).exp()
    logits = scale * x @ y.t()
    labels = torch.arange(x.shape[0], device=x.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


@torch.no_grad()
def sinkhorn(out, epsilon=0.05, iterations=3):
    """SwAV's distributed_sinkhorn on one process (facebookresearch/swav main_swav.py)."""
    q = torch.exp(out / epsilon).t()
    b, k = q.shape[1], q.shape[0]
    q /= torch.sum(q)
    for _ in range(iterations):
        q /= torch.sum(q, dim=1, keepdim=True)
        q /= k
        q /= torch.sum(q, dim=0, keepdim=True)
        q /= b
    return (q * b).t()


def swav(z1, z2, prototypes):
    """SwAV swapped prediction over 2 crops (main_swav.py's training loop, no queue)."""
    c = F.normalize(prototypes, dim=1)
    scores = [F.normalize(z, dim=1) @ c.t() for z in (z1, z2)]
    loss = 0
    for i in range(2):
        q = sinkhorn(scores[i].detach() - scores[i].detach().max())
        p = F.log_softmax(scores[1 - i] / TAU, dim=1)
        loss -= torch.mean(torch.sum(q * p, dim=1))
    return loss / 2


def step(loss, n, device):
    z1 = torch.randn(n, DIM, device=device, requires_grad=True)
    z2 = torch.randn(n, DIM, device=device, requires_grad=True)
    if loss in ("nt_xent", "nt_xent_tiled"):
        return lambda: nt_xent(z1, z2).backward()
    if loss == "info_nce_queue":
        queue = torch.randn(QUEUE, DIM, device=device)
        return lambda: info_nce_queue(z1, z2.detach(), queue).backward()
    if loss == "clip":
        scale = torch.tensor(1 / 0.07, device=device).log().requires_grad_()
        return lambda: clip(z1, z2, scale).backward()
    prototypes = torch.randn(PROTOTYPES, DIM, device=device, requires_grad=True)
    return lambda: swav(z1, z2, prototypes).backward()


def main():
    max_n = int(sys.argv[1]) if len(sys.argv) > 1 else DENSE_MAX_N
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    cases = [(name, n) for name in ("nt_xent", "nt_xent_tiled", "info_nce_queue", "clip", "swav")
             for n in (256, 1024, 4096) if n <= max_n]
    for device in devices:
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for name, n in cases:
            f = step(name, n, device)
            ms = median_ms(lambda: (f(), sync()))
            print(json.dumps({"loss": name, "n": n, "dim": DIM, "device": device,
                              "pytorch_ms": round(ms, 2)}), flush=True)


if __name__ == "__main__":
    main()
