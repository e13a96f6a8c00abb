//! Criterion benchmark of one backbone training step (forward + backward) of the default
//! SimCLR encoder, in each activation layout and number format ssl-models offers.
//!
//! `benches/reference/backbone_step.py` times the same network in PyTorch eager.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ssl_bench::BenchDevice;
use ssl_models::{Precision, ResNet, ResNetConfig};
use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

/// The default config's backbone: CIFAR stem, `[1, 1, 1]` basic blocks of width 32, 1 channel.
fn config(channels_last: bool, precision: Precision) -> ResNetConfig {
    ResNetConfig {
        layers: vec![1, 1, 1],
        width: 32,
        in_channels: 1,
        channels_last,
        precision,
        ..ResNetConfig::cifar_resnet18()
    }
}

fn backbone_step(c: &mut Criterion) {
    let variants = [
        ("f32_nchw", false, Precision::F32),
        ("f32_channels_last", true, Precision::F32),
        ("bf16_channels_last", true, Precision::Bf16),
    ];
    for dev in BenchDevice::available() {
        // 2N = 1024 views of 16 × 16 px: one step of the default `cargo xtask run`.
        let mut group =
            c.benchmark_group(format!("{}/resnet_w32_111_fwd_bwd_1024x16px", dev.name()));
        let x = Tensor::rand([1024, 1, 16, 16], (Kind::Float, dev.device()));
        for (name, channels_last, precision) in variants {
            let vs = nn::VarStore::new(dev.device());
            let net = ResNet::new(&vs.root(), &config(channels_last, precision)).expect("valid");
            group.bench_with_input(BenchmarkId::from_parameter(name), &name, |b, _| {
                b.iter_custom(|iters| {
                    dev.time(iters, || {
                        net.forward_t(&x, true).square().mean(Kind::Float).backward()
                    })
                })
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(8));
    targets = backbone_step
}
criterion_main!(benches);
