"""PyTorch eager reference for `cargo xtask bench-models` (crates/ssl-models/examples/model_step.rs):
one training step (forward, mean of squared features, backward) of torchvision's ResNet-18 with
the CIFAR stem on 32 x 32 RGB images and of ViT-Tiny/4 (timm's `vit_tiny_patch16_224` layout
with 4 px patches) on 32 x 32, at batch 256 (and, on CUDA only, ResNet-50 at 224 x 224).

Rows: ResNet-18 f32 NCHW and f32 channels-last (`model.to(memory_format=torch.channels_last)`,
input likewise: PyTorch's usual recipe), ViT-Tiny f32; bf16 autocast rows only on CUDA or a CPU
with native bf16 (AVX512-BF16 / AMX), where it is not a 10x slow path. Prints one JSON line per
row with `pytorch_img_s` (batch / median step time).

Run with the set-up venv: `~/.cache/ssl-rs/torch-2.11.0/bin/python benches/reference/model_step.py`.
"""

import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from timing import median_ms

BATCH = 256
WARMUP, RUNS = 1, 3


class Block(nn.Module):
    """timm's ViT block: pre-norm, fused attention, exact GELU, LayerNorm eps 1e-6."""

    def __init__(self, d, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        self.heads = heads

    def forward(self, x):
        n, t, d = x.shape
        qkv = self.qkv(self.norm1(x)).view(n, t, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, d)
        x = x + self.proj(a)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Vit(nn.Module):
    """ViT-Tiny: D 192, 12 blocks, 3 heads, class token, learnt positions."""

    def __init__(self, image=32, patch=4, d=192, depth=12, heads=3):
        super().__init__()
        self.patch = nn.Conv2d(3, d, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, 1 + (image // patch) ** 2, d))
        self.blocks = nn.Sequential(*[Block(d, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(d, eps=1e-6)

    def forward(self, x):
        p = self.patch(x).flatten(2).transpose(1, 2)
        z = torch.cat([self.cls.expand(x.shape[0], -1, -1), p], 1) + self.pos
        return self.norm(self.blocks(z))[:, 0]


def cifar_resnet18():
    m = torchvision.models.resnet18()
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    m.fc = nn.Identity()
    return m


def resnet50():
    m = torchvision.models.resnet50()
    m.fc = nn.Identity()
    return m


def native_bf16(device):
    if device == "cuda":
        return True
    flags = open("/proc/cpuinfo").read()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def row(model, build, channels_last, bf16, device, size=32):
    torch.manual_seed(0)
    net = build().to(device)
    x = torch.rand(BATCH, 3, size, size, device=device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step():
        net.zero_grad(set_to_none=False)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            y = net(x)
        y.float().square().mean().backward()
        if device == "cuda":
            torch.cuda.synchronize()

    ms = median_ms(step, warmup=WARMUP, runs=RUNS)
    print(json.dumps({"model": model, "size": size, "batch": BATCH,
                      "precision": "bf16" if bf16 else "f32",
                      "layout": "channels_last" if channels_last else "nchw",
                      "device": device, "pytorch_img_s": BATCH / ms * 1e3}), flush=True)


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precisions = [False, True] if native_bf16(device) else [False]
    for bf16 in precisions:
        for channels_last in (False, True):
            row("resnet18_cifar", cifar_resnet18, channels_last, bf16, device)
        row("vit_tiny_4", Vit, False, bf16, device)
        if device == "cuda":
            row("resnet50", resnet50, True, bf16, device, size=224)


if __name__ == "__main__":
    sys.exit(main())
