"""PyTorch eager reference for benches/benches/backbone.rs: one training step (forward +
backward) of the default SimCLR backbone on 1024 views of 16 x 16 px, in the same three
variants: f32 NCHW, f32 channels-last after the stem, bf16 autocast with channels-last.

Run with the set-up venv: `~/.cache/ssl-rs/torch-2.11.0/bin/python benches/reference/backbone_step.py`.
Prints one line per variant: the median milliseconds per step over 20 steps after 5 warm-up steps.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from timing import median_ms


class Block(nn.Module):
    """torchvision's BasicBlock."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Backbone(nn.Module):
    """CIFAR stem, [1, 1, 1] basic blocks of width 32, one input channel, pooled features."""

    def __init__(self, channels_last):
        super().__init__()
        w = 32
        self.conv1 = nn.Conv2d(1, w, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.layers = nn.Sequential(Block(w, w, 1), Block(w, 2 * w, 2), Block(2 * w, 4 * w, 2))
        self.channels_last = channels_last

    def forward(self, x):
        y = self.conv1(x)
        if self.channels_last:
            # As ssl-models: a one-channel input has ambiguous strides, so switch after the stem.
            y = y.contiguous(memory_format=torch.channels_last)
        y = self.layers(F.relu(self.bn1(y)))
        return F.adaptive_avg_pool2d(y, 1).flatten(1)


def time_variant(channels_last, bf16):
    torch.manual_seed(0)
    net = Backbone(channels_last)
    x = torch.rand(1024, 1, 16, 16)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            h = net(x)
        h.float().square().mean().backward()

    return median_ms(step, warmup=5, runs=20)


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, cl, bf16 in [
        ("f32_nchw", False, False),
        ("f32_channels_last", True, False),
        ("bf16_channels_last", True, True),
    ]:
        print(f"{name}: {time_variant(cl, bf16):.1f} ms per step")
