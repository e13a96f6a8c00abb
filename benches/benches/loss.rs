//! Criterion micro-benchmarks of the losses: forward + backward on CPU (and CUDA when present).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ssl_bench::BenchDevice;
use ssl_loss::{NtXentConfig, PairLoss};
use tch::{Kind, Tensor};

fn nt_xent(c: &mut Criterion) {
    let loss =
        NtXentConfig { temperature: 0.1, ..Default::default() }.build().expect("valid config");
    for dev in BenchDevice::available() {
        let mut group = c.benchmark_group(format!("{}/nt_xent_fwd_bwd", dev.name()));
        for n in [256i64, 1024] {
            let z1 = Tensor::randn([n, 128], (Kind::Float, dev.device())).set_requires_grad(true);
            let z2 = Tensor::randn([n, 128], (Kind::Float, dev.device())).set_requires_grad(true);
            group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter_custom(|iters| dev.time(iters, || loss.forward(&z1, &z2).backward()))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(3));
    targets = nt_xent
}
criterion_main!(benches);
