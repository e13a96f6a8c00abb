//! The clock of the examples that time one step for `cargo xtask bench-*` (ours beside
//! `benches/reference/timing.py`'s `median_ms`). Tests never time anything.

use std::time::Instant;

/// The median wall time of `f` in milliseconds over `runs` calls (the upper middle one of an
/// even count), after `warmup` untimed calls.
///
/// # Panics
/// When `runs` is 0.
pub fn median_ms(warmup: usize, runs: usize, mut f: impl FnMut()) -> f64 {
    assert!(runs > 0, "median_ms needs at least one timed run");
    for _ in 0..warmup {
        f();
    }
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}
