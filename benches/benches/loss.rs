//! Criterion micro-benchmarks of the losses: forward + backward of every case of
//! `ssl_bench::loss_cases` and its GEMM floor, on the CPU and on CUDA when present.
//! `cargo xtask bench-loss` runs these and reads criterion's estimates.
//! The tiled case at N = 65,536 (minutes per step) is timed by the `loss_memory` example.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use ssl_bench::loss_cases::{floor, step, LossKind};
use ssl_bench::BenchDevice;

/// The largest batch the criterion bench times (one step of the tiled loss ≈ 1 s there).
const MAX_N: i64 = 16_384;
/// The largest `[rows, cols]` matrix a GEMM floor allocates.
const MAX_FLOOR_BYTES: i64 = 5 << 30;

fn losses(c: &mut Criterion) {
    for dev in BenchDevice::available() {
        for loss in LossKind::ALL {
            let mut group = c.benchmark_group(format!("{}_{}", dev.name(), loss.name()));
            group.sampling_mode(SamplingMode::Flat);
            for &n in loss.sizes().iter().filter(|&&n| n <= MAX_N) {
                let mut f = step(loss, n, dev.device());
                group.bench_with_input(BenchmarkId::new("step", n), &n, |b, _| {
                    b.iter_custom(|iters| dev.time(iters, &mut f))
                });
                drop(f);
                if let Some(mut f) = floor(loss, n, dev.device(), MAX_FLOOR_BYTES) {
                    group.bench_with_input(BenchmarkId::new("gemm_floor", n), &n, |b, _| {
                        b.iter_custom(|iters| dev.time(iters, &mut f))
                    });
                }
            }
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = losses
}
criterion_main!(benches);
