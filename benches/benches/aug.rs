//! Criterion benchmarks of the augmentation pipelines of `ssl_bench::aug_cases` (SimCLR's two
//! views from a uint8 batch), on the CPU and on CUDA when present. `cargo xtask bench-aug`
//! runs these and reads criterion's estimates.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use ssl_bench::aug_cases::{step, CASES};
use ssl_bench::BenchDevice;

fn pipelines(c: &mut Criterion) {
    for dev in BenchDevice::available() {
        let mut group = c.benchmark_group(format!("{}_aug", dev.name()));
        group.sampling_mode(SamplingMode::Flat);
        for case in CASES {
            let mut f = step(case, dev.device());
            group.bench_with_input(BenchmarkId::new(case.name, case.size), &case.size, |b, _| {
                b.iter_custom(|iters| dev.time(iters, &mut f))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = pipelines
}
criterion_main!(benches);
