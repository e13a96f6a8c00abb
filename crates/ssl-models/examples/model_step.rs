//! Ours for `cargo xtask bench-models`: one training step (forward, mean of squared features,
//! backward) of ResNet-18 with the CIFAR stem on 32 × 32 RGB images and of ViT-Tiny/4 on
//! 32 × 32, batch 256, timed as `benches/reference/model_step.py` times PyTorch eager: the
//! median of 3 steps after 1 warm-up step. Rows: ResNet-18 f32 NCHW and channels-last, ViT-Tiny
//! f32 (and ResNet-50 at 224 px, channels-last, on CUDA only); bf16 rows only on CUDA or a CPU with native bf16 (elsewhere it is a 10× slow path).
//! Prints one JSON line per row with `ours_img_s`.

use ssl_models::{BackboneConfig, CpuFeatures, Precision, ResNetConfig, VitConfig};
use ssl_testutil::median_ms;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const BATCH: i64 = 256;
const WARMUP: usize = 1;
const RUNS: usize = 3;

fn row(
    model: &str,
    size: i64,
    cfg: &BackboneConfig,
    layout: &str,
    precision: &str,
    device: Device,
) {
    tch::manual_seed(0);
    let vs = VarStore::new(device);
    let net = cfg.build(&vs.root()).expect("a valid benchmark config");
    let x = Tensor::rand([BATCH, 3, size, size], (Kind::Float, device));
    let vars = vs.trainable_variables();
    let step = || {
        for v in &vars {
            let mut g = v.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        net.forward_t(&x, true).square().mean(Kind::Float).backward();
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let img_s = BATCH as f64 / median_ms(WARMUP, RUNS, step) * 1e3;
    let dev = if device.is_cuda() { "cuda" } else { "cpu" };
    println!(
        "{{\"model\": \"{model}\", \"size\": {size}, \"batch\": {BATCH}, \"precision\": \
         \"{precision}\", \"layout\": \"{layout}\", \"device\": \"{dev}\", \"ours_img_s\": {img_s}}}"
    );
}

fn main() {
    let device = Device::cuda_if_available();
    let native = Precision::Auto.resolve(device, &CpuFeatures::detect()).precision;
    let precisions: &[(Precision, &str)] = if native == Precision::Bf16 {
        &[(Precision::F32, "f32"), (Precision::Bf16, "bf16")]
    } else {
        &[(Precision::F32, "f32")]
    };
    for &(precision, name) in precisions {
        for (channels_last, layout) in [(false, "nchw"), (true, "channels_last")] {
            let cfg = ResNetConfig { channels_last, precision, ..ResNetConfig::cifar_resnet18() };
            row("resnet18_cifar", 32, &BackboneConfig::ResNet(cfg), layout, name, device);
        }
        let vit = VitConfig { precision, ..VitConfig::tiny(32, 4) };
        row("vit_tiny_4", 32, &BackboneConfig::Vit(vit), "nchw", name, device);
        if device.is_cuda() {
            let cfg = ResNetConfig { channels_last: true, precision, ..ResNetConfig::resnet50() };
            row("resnet50", 224, &BackboneConfig::ResNet(cfg), "channels_last", name, device);
        }
    }
}
