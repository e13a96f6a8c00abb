//! Features of a whole image set through a frozen network, in eval mode and without gradients.

use ssl_aug::Resize;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

/// `f(x)` for every image of the uint8 batch `images` (`[N, C, H, W]`), in chunks of `chunk`,
/// with BatchNorm in eval mode, each chunk scaled to `[0, 1]` and resized by `resize` first when
/// given; returns float `[N, F]` on the CPU.
pub fn extract_features(
    net: &(impl ModuleT + ?Sized),
    images: &Tensor,
    chunk: i64,
    resize: Option<&Resize>,
    device: Device,
) -> Tensor {
    let n = images.size()[0];
    tch::no_grad(|| {
        let parts: Vec<Tensor> = (0..n)
            .step_by(chunk as usize)
            .map(|start| {
                let len = chunk.min(n - start);
                let x = images.narrow(0, start, len).to_device(device).to_kind(Kind::Float) / 255.0;
                let x = resize.map_or(x.shallow_clone(), |r| r.forward(&x)); // [len, C, h, w]
                net.forward_t(&x, false).to_device(Device::Cpu) // [len, F]
            })
            .collect();
        Tensor::cat(&parts, 0) // [N, F]
    })
}

/// Raw pixels scaled to `[0, 1]` as features: `[N, C·H·W]`.
pub fn pixels_as_features(images: &Tensor) -> Tensor {
    images.flatten(1, -1).to_kind(Kind::Float) / 255.0 // [N, C·H·W]
}
