//! Forward + backward of `TiledNtXent` at a batch whose dense logits would not fit in memory,
//! reporting wall time and the process's peak resident memory (VmHWM).
//!
//! `cargo run --release -p ssl-bench --example tiled_nt_xent_scale -- [N] [D] [TILE]`
//! (defaults 65536 128 2048: 2N = 131,072 views, whose dense 2N × 2N f32 logits take 64 GiB).

use std::time::Instant;

use anyhow::{Context, Result};
use ssl_loss::{PairLoss, TiledNtXentConfig};
use tch::{Device, Kind, Tensor};

/// Peak resident set size of this process in MiB, from `/proc/self/status`.
fn peak_rss_mib() -> Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM line")?;
    let kib: f64 = line.split_whitespace().nth(1).context("VmHWM value")?.parse()?;
    Ok(kib / 1024.0)
}

fn main() -> Result<()> {
    let args: Vec<i64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()
        .context("N D TILE")?;
    let (n, d, tile) = (
        args.first().copied().unwrap_or(65_536),
        args.get(1).copied().unwrap_or(128),
        args.get(2).copied().unwrap_or(2048),
    );
    let loss = TiledNtXentConfig { temperature: 0.2, tile }.build()?;
    let z1 = Tensor::randn([n, d], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let z2 = Tensor::randn([n, d], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let before = peak_rss_mib()?;
    let start = Instant::now();
    let l = loss.forward(&z1, &z2);
    let forward = start.elapsed().as_secs_f64();
    l.backward();
    let total = start.elapsed().as_secs_f64();
    let after = peak_rss_mib()?;
    let dense_gib = (2 * n) as f64 * (2 * n) as f64 * 4.0 / (1u64 << 30) as f64;
    println!(
        "2N = {} views, D = {d}, tile {tile}: loss {:.4}; forward + gradient pass {forward:.1} s, \
         with backward {total:.1} s; peak RSS {before:.0} MiB before, {after:.0} MiB after \
         (+{:.0} MiB); the dense logits alone would be {dense_gib:.1} GiB",
        2 * n,
        l.double_value(&[]),
        after - before
    );
    Ok(())
}
