//! Forward + backward time of `NtXent` (dense) at one batch size next to the GEMM floor of the
//! same shapes (the three `[2N, 2N] × D` products that the logits and their gradient need), and
//! `TiledNtXent` in one tile and in tiles of N.
//! `benches/reference/loss_timing.py` times PyTorch eager on the same shapes.
//!
//! `cargo run --release -p ssl-bench --example loss_timing -- [N] [D]` (defaults 4096 128);
//! prints the median of 10 timed runs after 3 warm-up runs.

use std::time::Instant;

use anyhow::{Context, Result};
use ssl_loss::{NtXentConfig, PairLoss, TiledNtXentConfig};
use tch::{Device, Kind, Tensor};

/// Median wall time of `f` in milliseconds over 10 runs after 3 warm-up runs.
fn median_ms(mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut times: Vec<f64> = (0..10)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[4] + times[5]) / 2.0
}

fn main() -> Result<()> {
    let args: Vec<i64> =
        std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>().context("N D")?;
    let (n, d) = (args.first().copied().unwrap_or(4096), args.get(1).copied().unwrap_or(128));
    let opts = (Kind::Float, Device::Cpu);
    let loss = NtXentConfig { temperature: 0.1, ..Default::default() }.build()?;
    let z1 = Tensor::randn([n, d], opts).set_requires_grad(true);
    let z2 = Tensor::randn([n, d], opts).set_requires_grad(true);
    let ours = median_ms(|| loss.forward(&z1, &z2).backward());
    // TiledNtXent's manual gradient: one tile holding all 2N views (logits once, (P + Pᵀ) z as
    // one product), and tiles of N (logits twice, P z and Pᵀ z per tile pair).
    let tiled = |tile| -> Result<f64> {
        let t = TiledNtXentConfig { temperature: 0.1, tile }.build()?;
        Ok(median_ms(|| t.forward(&z1, &z2).backward()))
    };
    let (one_tile, n_tiles) = (tiled(2 * n)?, tiled(n)?);
    let z = Tensor::randn([2 * n, d], opts);
    let s = Tensor::randn([2 * n, 2 * n], opts);
    let floor = median_ms(|| {
        let _logits = z.matmul(&z.tr()); // [2N, 2N]
        let _dz_rows = s.matmul(&z); // [2N, D]
        let _dz_cols = s.tr().matmul(&z); // [2N, D]
    });
    println!(
        "nt_xent N = {n}, D = {d}: fwd+bwd {ours:.1} ms, GEMM floor {floor:.1} ms, ratio {:.2}; \
         tiled_nt_xent one tile {one_tile:.1} ms ({:.2}), tile N {n_tiles:.1} ms ({:.2})",
        ours / floor,
        one_tile / floor,
        n_tiles / floor
    );
    Ok(())
}
