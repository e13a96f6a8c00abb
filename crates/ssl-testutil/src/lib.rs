//! Test helpers shared by the ssl-* crates (a dev-dependency only, never published).
//!
//! - [`assert_close`]: element-wise comparison of two tensors with relative and absolute
//!   tolerances, reporting the worst element.
//! - [`grad_check`]: central finite differences in `f64` against autograd.
//! - [`pair_grad_check`]: [`grad_check`] of a two-view loss with respect to both views.
//! - [`descend`]: a few plain gradient-descent steps, for "the loss goes down" smoke tests.
//! - [`two_views`]: random f64 embeddings and a noisy second view of them.
//! - [`rows`], [`dot`], [`unit()`], [`cosine`]: plain `Vec<f64>` pieces for the f64 loop
//!   references that tests write from a paper's formula.
//! - [`seed_global_rng`]: the one lock on libtorch's global generator, taken by every test
//!   that seeds it.
//! - [`ScratchDir`]: a temporary directory for tests that write files, removed on drop.
//! - [`median_ms`]: the clock of the examples that time a step for `cargo xtask bench-*`.

use std::sync::{Mutex, MutexGuard, PoisonError};

mod clock;
mod scratch;
pub use clock::median_ms;
pub use scratch::ScratchDir;

use tch::{Kind, Tensor};

/// Seeds libtorch's global generator and returns the guard of the one lock on it; hold it for
/// the whole test.
///
/// libtorch has a single generator (weight initialisation, `randn`, `randperm`), and a test
/// binary runs its tests in parallel threads: without the lock, another test's draws land
/// between a seeded test's `manual_seed` and its draws, and the "seeded" values change from
/// run to run. A test whose assertions depend on its draws takes this guard, and so does any
/// test that draws in the same binary as such a test. A panicking holder does not poison it
/// for the others.
pub fn seed_global_rng(seed: i64) -> MutexGuard<'static, ()> {
    static GLOBAL_RNG: Mutex<()> = Mutex::new(());
    let guard = GLOBAL_RNG.lock().unwrap_or_else(PoisonError::into_inner);
    tch::manual_seed(seed);
    guard
}

/// Panics unless `|a - b| <= atol + rtol * |b|` holds element-wise; shapes must match.
///
/// # Panics
/// On a shape mismatch or when any element is out of tolerance; the message names the worst one.
pub fn assert_close(a: &Tensor, b: &Tensor, rtol: f64, atol: f64) {
    assert_eq!(a.size(), b.size(), "assert_close: shapes differ");
    let a = a.to_kind(Kind::Double).to_device(tch::Device::Cpu).flatten(0, -1);
    let b = b.to_kind(Kind::Double).to_device(tch::Device::Cpu).flatten(0, -1);
    let av = Vec::<f64>::try_from(&a).expect("a to Vec<f64>");
    let bv = Vec::<f64>::try_from(&b).expect("b to Vec<f64>");
    let mut worst: Option<(usize, f64)> = None;
    for (i, (x, y)) in av.iter().zip(&bv).enumerate() {
        let excess = if x.is_nan() != y.is_nan() {
            f64::INFINITY
        } else {
            (x - y).abs() - (atol + rtol * y.abs()) // NaN (so "close") when both are NaN
        };
        if excess > 0.0 && worst.is_none_or(|(_, e)| excess > e) {
            worst = Some((i, excess));
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "assert_close: element {i} differs: {} vs {} (rtol {rtol}, atol {atol})",
            av[i], bv[i]
        );
    }
}

/// Checks autograd's gradient of the scalar `f(x)` against central finite differences.
///
/// `x` is converted to `f64`; each element is moved by `±eps` and the slope compared with the
/// autograd gradient under `rtol` (with an absolute floor of `rtol * 1e-3`).
///
/// # Panics
/// When `f` does not return a scalar or a gradient element is out of tolerance.
pub fn grad_check(f: impl Fn(&Tensor) -> Tensor, x: &Tensor, eps: f64, rtol: f64) {
    let x = x.to_kind(Kind::Double).detach().set_requires_grad(true);
    let y = f(&x);
    assert_eq!(y.numel(), 1, "grad_check: f must return a scalar, got {:?}", y.size());
    let analytic = Tensor::run_backward(&[&y], &[&x], false, false).remove(0);
    let analytic = Vec::<f64>::try_from(analytic.flatten(0, -1)).unwrap();
    let base = x.detach().flatten(0, -1);
    let n = base.numel();
    for i in 0..n as i64 {
        let eval = |delta: f64| {
            let xp = base.copy();
            let _ = xp.get(i).f_add_(&Tensor::from(delta)).unwrap();
            tch::no_grad(|| f(&xp.reshape(x.size())).double_value(&[]))
        };
        let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
        let a = analytic[i as usize];
        let tol = rtol * numeric.abs().max(a.abs()).max(1e-3);
        assert!(
            (numeric - a).abs() <= tol,
            "grad_check: d f / d x[{i}]: autograd {a} vs finite difference {numeric}"
        );
    }
}

/// [`grad_check`] of `loss(z1, z2)` with respect to every element of both views at once.
///
/// # Panics
/// As [`grad_check`], or when `z1` and `z2` differ in shape.
pub fn pair_grad_check(
    loss: impl Fn(&Tensor, &Tensor) -> Tensor,
    z1: &Tensor,
    z2: &Tensor,
    eps: f64,
    rtol: f64,
) {
    assert_eq!(z1.size(), z2.size(), "pair_grad_check: the views differ in shape");
    let n = z1.size()[0];
    let both = Tensor::cat(&[z1, z2], 0); // [2N, D]
    grad_check(|z| loss(&z.narrow(0, 0, n), &z.narrow(0, n, n)), &both, eps, rtol);
}

/// `n` random f64 embeddings of dimension `d` (from libtorch's global generator) and a second
/// view of them with Gaussian noise of standard deviation `noise` added.
pub fn two_views(n: i64, d: i64, noise: f64) -> (Tensor, Tensor) {
    let z1 = Tensor::randn([n, d], (Kind::Double, tch::Device::Cpu));
    let z2 = &z1 + noise * Tensor::randn([n, d], (Kind::Double, tch::Device::Cpu));
    (z1, z2)
}

/// The rows of a 2-D tensor as `f64` vectors.
///
/// # Panics
/// When `t` is not 2-D.
pub fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    Vec::<Vec<f64>>::try_from(t.to_kind(Kind::Double)).expect("rows: a 2-D tensor")
}

/// `a · b`.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `v / ‖v‖₂`.
pub fn unit(v: &[f64]) -> Vec<f64> {
    let norm = dot(v, v).sqrt();
    v.iter().map(|x| x / norm).collect()
}

/// `a · b / (‖a‖₂ ‖b‖₂)`.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

/// Takes `steps` gradient-descent steps `x ← x − lr · ∇f(x)` from `x` (left untouched) and
/// returns `f` before the first and after the last.
///
/// # Panics
/// When `f` does not return a scalar that depends on `x`.
pub fn descend(f: impl Fn(&Tensor) -> Tensor, x: &Tensor, lr: f64, steps: usize) -> (f64, f64) {
    let x = x.detach().copy().set_requires_grad(true);
    let start = tch::no_grad(|| f(&x).double_value(&[]));
    for _ in 0..steps {
        let g = Tensor::run_backward(&[&f(&x)], &[&x], false, false).remove(0);
        tch::no_grad(|| {
            let _ = x.shallow_clone().f_sub_(&(g * lr)).expect("in-place update");
        });
    }
    (start, tch::no_grad(|| f(&x).double_value(&[])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grad_check_accepts_the_gradient_of_a_cubic_and_rejects_a_wrong_one() {
        let x = Tensor::from_slice(&[0.5f64, -1.0, 2.0]);
        grad_check(|x| x.pow_tensor_scalar(3).sum(Kind::Double), &x, 1e-6, 1e-5);
        // A function whose autograd gradient is wrong on purpose: detach hides the x^2 term.
        let wrong = std::panic::catch_unwind(|| {
            grad_check(|x| (x * x.detach()).sum(Kind::Double), &x, 1e-6, 1e-5)
        });
        assert!(wrong.is_err());
    }

    #[test]
    fn descend_on_a_parabola_shrinks_by_the_closed_form_factor() {
        // f(x) = x², x ← x − 0.25 · 2x = x / 2: after 3 steps f(1) = 1 becomes 1/64.
        let (start, end) =
            descend(|x| x.square().sum(Kind::Double), &Tensor::from(1.0f64), 0.25, 3);
        assert_eq!((start, end), (1.0, 1.0 / 64.0));
    }

    #[test]
    fn the_loop_pieces_match_hand_computed_values() {
        let r = rows(&Tensor::from_slice(&[3.0f32, 4.0, 0.0, 2.0]).view([2, 2]));
        assert_eq!(r, vec![vec![3.0, 4.0], vec![0.0, 2.0]]);
        assert_eq!(dot(&r[0], &r[1]), 8.0);
        assert_eq!(unit(&r[0]), vec![0.6, 0.8]);
        assert_eq!(cosine(&r[0], &r[1]), 0.8); // 8 / (5 · 2)
    }

    #[test]
    fn assert_close_names_the_worst_element() {
        let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        let b = Tensor::from_slice(&[1.0f32, 2.5, 3.0]);
        assert_close(&a, &a.copy(), 0.0, 0.0);
        let msg = std::panic::catch_unwind(|| assert_close(&a, &b, 1e-3, 0.0)).unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(msg.contains("element 1"), "{msg}");
    }
}
