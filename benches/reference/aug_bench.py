"""Reference side of `cargo xtask bench-aug`: the SimCLR two-view pipeline in
torchvision.transforms.v2 (per sample, through a DataLoader with 2 workers, as training scripts
feed a GPU) and in kornia.augmentation (batched on the tensor). Prints one JSON object per line:
pipeline, size, batch, device, torchvision_img_s or kornia_img_s (source images per second; each
source image gives two views).

The pipelines match `ssl_aug::ViewPair` presets: at 32 px SimCLR's CIFAR views (crop scale
(0.08, 1), flip, jitter (0.4, 0.4, 0.4, 0.1) p 0.8, grayscale p 0.2); at 96 px its ImageNet
views (jitter (0.8, 0.8, 0.8, 0.2), blur of kernel 9, σ U(0.1, 2), p 0.5).
`~/.cache/ssl-rs/torch-2.11.0/bin/python benches/reference/aug_bench.py`
"""

import json
import time

import torch
from torch.utils.data import DataLoader, Dataset

CASES = [("simclr", 32, 512, False), ("simclr_blur", 96, 256, True)]
BATCHES = 4


def jitter(blur):
    return (0.8, 0.8, 0.8, 0.2) if blur else (0.4, 0.4, 0.4, 0.1)


def torchvision_pipeline(size, blur):
    from torchvision.transforms import v2
    ops = [
        v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(*jitter(blur))], p=0.8),
        v2.RandomGrayscale(p=0.2),
    ]
    if blur:
        ops.append(v2.RandomApply([v2.GaussianBlur(9, sigma=(0.1, 2.0))], p=0.5))
    ops.append(v2.ToDtype(torch.float32, scale=True))
    return v2.Compose(ops)


class TwoViews(Dataset):
    """uint8 [3, S, S] source images, each returned as two augmented views."""

    def __init__(self, images, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.transform(self.images[i])


def torchvision_img_s(size, batch, blur):
    images = torch.randint(0, 256, (batch * BATCHES, 3, size, size), dtype=torch.uint8)
    loader = DataLoader(TwoViews(images, torchvision_pipeline(size, blur)), batch_size=batch,
                        num_workers=2, persistent_workers=True)
    for _ in loader:  # warm-up epoch: workers start, caches fill
        pass
    start = time.perf_counter()
    for _ in loader:
        pass
    return batch * BATCHES / (time.perf_counter() - start)


def kornia_img_s(size, batch, blur, device):
    import kornia.augmentation as K
    ops = [
        K.RandomResizedCrop((size, size), scale=(0.08, 1.0)),
        K.RandomHorizontalFlip(),
        K.ColorJitter(*jitter(blur), p=0.8),
        K.RandomGrayscale(p=0.2),
    ]
    if blur:
        ops.append(K.RandomGaussianBlur((9, 9), (0.1, 2.0), p=0.5))
    pipeline = torch.nn.Sequential(*ops).to(device)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step():
        x = images.float() / 255
        pipeline(x), pipeline(x)
        sync()

    for _ in range(2):
        step()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return batch / sorted(times)[len(times) // 2]


def main():
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for name, size, batch, blur in CASES:
        row = {"pipeline": name, "size": size, "batch": batch, "device": "cpu"}
        print(json.dumps({**row, "torchvision_img_s": round(torchvision_img_s(size, batch, blur), 1)}), flush=True)
        for device in devices:
            row["device"] = device
            print(json.dumps({**row, "kornia_img_s": round(kornia_img_s(size, batch, blur, device), 1)}), flush=True)


if __name__ == "__main__":
    main()
