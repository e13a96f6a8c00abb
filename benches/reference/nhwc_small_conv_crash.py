"""PyTorch 2.11.0 on an AVX2-only CPU: the weight gradient of a stride-2 1x1 convolution with
fewer than 8 input channels in channels-last layout corrupts the heap (oneDNN's
jit_avx2_1x1_convolution_bwd_weights). One thread aborts in glibc ("free(): invalid next size");
two threads may instead spin forever. 8 or more input channels, stride 1, or NCHW are fine.

Run with the set-up venv: python benches/reference/nhwc_small_conv_crash.py 4 8 2
(arguments: input channels, output channels, stride). Seen on an AMD EPYC (AVX2, no AVX-512),
2026-12-07: (4, 8, 2), (2, 8, 2), (6, 8, 2), (4, 16, 2) abort; (4, 8, 1), (8, 16, 2),
(12, 24, 2) run. ssl-models' ResNet therefore keeps NCHW below width 8.
"""
import sys

import torch

torch.manual_seed(0)
torch.set_num_threads(1)
cin, cout, stride = (int(a) for a in sys.argv[1:4])
conv = torch.nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
for _ in range(100):
    x = torch.randn(32, cin, 16, 16).contiguous(memory_format=torch.channels_last)
    conv(x.requires_grad_()).square().sum().backward()
print("ok")
