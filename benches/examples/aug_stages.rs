//! Where the time of one SimCLR view goes: each op of `ssl_bench::aug_cases`' pipeline timed on
//! its own, applied chunk by chunk on the calling thread as `Compose` applies a batch in order
//! (a large batch's chunks `Compose` spreads over threads instead, so the sum here is the
//! in-order cost). Prints one line per op with the median milliseconds per batch.
//!
//! `cargo run --release -p ssl-bench --example aug_stages -- [SIZE] [BATCH] [REPS] [CHUNK]`
//! (default 96 px, 256 samples, 15 repetitions, `Compose`'s 4 MiB in-order chunk). Run it
//! with the heap kept, as the benches:
//! `GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295`.

use std::time::Instant;

use anyhow::{Context, Result};
use ssl_aug::{aug_rng, Aug, ErasedParams, ViewPair};
use tch::{Device, Kind, Tensor};

fn arg(i: usize, default: i64) -> Result<i64> {
    std::env::args().nth(i).map_or(Ok(default), |a| a.parse().context("a number"))
}

fn main() -> Result<()> {
    let (size, batch, reps) = (arg(1, 96)?, arg(2, 256)?, arg(3, 15)? as usize);
    let view = ViewPair::simclr(size).view1;
    let mut ops: Vec<(&str, Box<dyn Aug>)> = vec![
        ("crop", Box::new(view.crop.build()?)),
        ("flip", Box::new(view.flip.build()?)),
        ("color_jitter", Box::new(view.color_jitter.build()?)),
    ];
    if let Some(g) = view.grayscale {
        ops.push(("grayscale", Box::new(g.build()?)));
    }
    if let Some(b) = view.blur {
        ops.push(("blur", Box::new(b.build()?)));
    }
    let images = Tensor::randint(256, [batch, 3, size, size], (Kind::Uint8, Device::Cpu));
    let x = images.to_kind(Kind::Float) / 255.0;
    let chunk = arg(4, (4 << 20) / (3 * size * size * 4))?.clamp(1, batch);
    let mut times = vec![Vec::new(); ops.len()];
    for rep in 0..reps {
        let mut rng = aug_rng(0, &[rep as u64]);
        let mut shape = x.size();
        let params: Vec<ErasedParams> = ops
            .iter()
            .map(|(_, op)| {
                let (p, out) = op.sample_erased(&shape, &mut rng);
                shape = out;
                p
            })
            .collect();
        let mut elapsed = vec![0.0; ops.len()];
        for start in (0..batch).step_by(chunk as usize) {
            let len = chunk.min(batch - start);
            let chunk = x.narrow(0, start, len);
            let mut y = chunk.shallow_clone();
            for (k, ((_, op), p)) in ops.iter().zip(&params).enumerate() {
                // As `Compose`: an op may write into its input once that is a fresh, contiguous
                // output of the op before (every op here returns a fresh tensor or its input).
                let writable = y.is_contiguous() && y.data_ptr() != chunk.data_ptr();
                let t = Instant::now();
                y = if writable {
                    op.apply_erased_owned(y, p, start as usize, len as usize)
                } else {
                    op.apply_erased(&y, p, start as usize, len as usize)
                };
                elapsed[k] += t.elapsed().as_secs_f64() * 1e3;
            }
        }
        for (t, e) in times.iter_mut().zip(elapsed) {
            t.push(e);
        }
    }
    let mut total = 0.0;
    for ((name, _), t) in ops.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        let median = t[t.len() / 2];
        total += median;
        println!("{name:>13}: {median:7.2} ms per batch of {batch} at {size} px");
    }
    println!("{:>13}: {total:7.2} ms (one view; chunks of {chunk})", "sum");
    Ok(())
}
