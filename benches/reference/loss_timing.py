"""PyTorch eager reference for benches/examples/loss_timing.rs: NT-Xent forward + backward as
SimCLR implementations write it (normalise, one [2N, 2N] matmul, mask the diagonal,
cross-entropy), and the GEMM floor of the same shapes.

Run with the set-up venv and the same allocator settings as the Rust side:
`GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295 \
 ~/.cache/ssl-rs/torch-2.11.0/bin/python benches/reference/loss_timing.py [N] [D]`.
Prints the median of 10 timed runs after 3 warm-up runs.
"""

import sys

import torch
import torch.nn.functional as F

from timing import median_ms


def nt_xent(z1, z2, tau):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.t() / tau
    logits.fill_diagonal_(float("-inf"))
    n = z1.shape[0]
    targets = (torch.arange(2 * n) + n) % (2 * n)
    return F.cross_entropy(logits, targets)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    d = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    z1 = torch.randn(n, d, requires_grad=True)
    z2 = torch.randn(n, d, requires_grad=True)
    ours = median_ms(lambda: nt_xent(z1, z2, 0.1).backward())
    z, s = torch.randn(2 * n, d), torch.randn(2 * n, 2 * n)
    floor = median_ms(lambda: (z @ z.t(), s @ z, s.t() @ z))
    print(f"pytorch nt_xent N = {n}, D = {d}: fwd+bwd {ours:.1f} ms, GEMM floor {floor:.1f} ms, "
          f"ratio {ours / floor:.2f} ({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
