//! Winograd F(4×4, 3×3) against libtorch's direct convolution on the stride-1 3×3 convolutions
//! of ResNet-18 with the CIFAR stem at batch 256 (64 channels at 32 px, 128 at 16, 256 at 8,
//! 512 at 4; and 128 at 7 px, the default backbone's last stage on 28 px evaluation images),
//! channels-last f32: forward + backward (input and weight gradients), and forward alone under
//! `no_grad`; the median of 5 calls after 1. What `ConvAlgorithm::Auto`'s thresholds rest on
//! (docs/benchmarks.md). Run with the heap setting of `cargo xtask
//! bench-models`:
//!
//! ```sh
//! GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295 \
//!   cargo run -p ssl-models --example winograd_shapes
//! ```

use ssl_models::winograd_conv3x3;
use ssl_testutil::median_ms;
use tch::{Device, Kind, Tensor};

fn nhwc(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

fn main() {
    tch::manual_seed(0);
    let opts = (Kind::Float, Device::Cpu);
    for (c, size) in [(64, 32), (128, 16), (128, 7), (256, 8), (512, 4)] {
        let x = nhwc(&Tensor::randn([256, c, size, size], opts)).set_requires_grad(true);
        let w = nhwc(&(Tensor::randn([c, c, 3, 3], opts) * (2.0 / (9.0 * c as f64)).sqrt()))
            .set_requires_grad(true);
        let g = nhwc(&Tensor::randn([256, c, size, size], opts));
        let step = |winograd: bool| {
            let y = if winograd {
                winograd_conv3x3(&x, &w)
            } else {
                x.conv2d(&w, None::<Tensor>, [1], [1], [1], 1)
            };
            let _ = Tensor::run_backward(&[(&y * &g).sum(Kind::Float)], &[&x, &w], false, false);
        };
        let direct = median_ms(1, 5, || step(false));
        let wino = median_ms(1, 5, || step(true));
        let forward = |winograd: bool| {
            tch::no_grad(|| {
                if winograd {
                    winograd_conv3x3(&x, &w)
                } else {
                    x.conv2d(&w, None::<Tensor>, [1], [1], [1], 1)
                }
            })
        };
        let direct_fwd = median_ms(1, 5, || drop(forward(false)));
        let wino_fwd = median_ms(1, 5, || drop(forward(true)));
        println!(
            "{{\"channels\": {c}, \"size\": {size}, \"direct_ms\": {direct:.1}, \"winograd_ms\": \
             {wino:.1}, \"speedup\": {:.2}, \"forward_direct_ms\": {direct_fwd:.1}, \
             \"forward_winograd_ms\": {wino_fwd:.1}, \"forward_speedup\": {:.2}}}",
            direct / wino,
            direct_fwd / wino_fwd
        );
    }
}
