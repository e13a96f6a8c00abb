//! Peak extra memory of one forward + backward of every `cargo xtask bench-loss` case, and the
//! wall time of that one step (the only timing of the tiled case at N = 65,536, whose steps
//! take minutes). Prints one JSON object per line: `loss`, `n`, `dim`, `device`, `peak_mib`,
//! `single_ms`.
//!
//! `cargo run --release -p ssl-bench --example loss_memory -- [MAX_N]` (default 65536). Run it
//! with glibc's default malloc, which returns large blocks to the kernel when freed, so each
//! case starts from the memory its inputs take: the peak is read from `VmHWM` after resetting
//! it (`/proc/self/clear_refs`), minus `VmRSS` before the step. The step is the case's first,
//! so a loss's scratch buffers count. On a CUDA machine every case also runs once on the GPU
//! (`single_ms` after a synchronise; `peak_mib` null, the RSS says nothing of device memory).

use std::time::Instant;

use anyhow::{Context, Result};
use ssl_bench::loss_cases::{step, LossKind, DIM};
use ssl_bench::BenchDevice;
use tch::Device;

/// A `kB` field of `/proc/self/status`, in MiB.
fn status_mib(field: &str) -> Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line =
        status.lines().find(|l| l.starts_with(field)).with_context(|| format!("no {field}"))?;
    let kib: f64 = line.split_whitespace().nth(1).context("a value")?.parse()?;
    Ok(kib / 1024.0)
}

fn main() -> Result<()> {
    let max_n: i64 = match std::env::args().nth(1) {
        Some(a) => a.parse().context("MAX_N")?,
        None => 65_536,
    };
    for loss in LossKind::ALL {
        for &n in loss.sizes().iter().filter(|&&n| n <= max_n) {
            let mut f = step(loss, n, Device::Cpu);
            std::fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")?;
            let before = status_mib("VmRSS:")?;
            let start = Instant::now();
            f();
            let ms = start.elapsed().as_secs_f64() * 1e3;
            let peak = status_mib("VmHWM:")? - before;
            println!(
                "{{\"loss\": \"{}\", \"n\": {n}, \"dim\": {DIM}, \"device\": \"cpu\", \
                 \"peak_mib\": {peak:.1}, \"single_ms\": {ms:.1}}}",
                loss.name()
            );
            drop(f);
            if tch::Cuda::is_available() {
                let dev = BenchDevice::available().pop().expect("CUDA is listed last");
                let mut f = step(loss, n, dev.device());
                let ms = dev.time(1, &mut f).as_secs_f64() * 1e3;
                println!(
                    "{{\"loss\": \"{}\", \"n\": {n}, \"dim\": {DIM}, \"device\": \"cuda\", \
                     \"peak_mib\": null, \"single_ms\": {ms:.1}}}",
                    loss.name()
                );
            }
        }
    }
    Ok(())
}
