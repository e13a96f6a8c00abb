//! NT-Xent, SimCLR's normalised temperature-scaled cross-entropy.

use tch::{nn, Tensor};

use crate::logit_scale::LogitScale;
use crate::ops::check_views;
use crate::symmetric_tiles::{self, check_shift_temperature, Tiles};
use crate::workspace::Workspace;
use crate::{LossError, PairLoss, Result, TiledNtXentConfig};

/// Above this many views (2N) [`NtXent`] switches to the tiled computation of
/// [`crate::TiledNtXent`]: the dense 2N × 2N f32 logits would take more than 1 GiB (and the
/// same again for their gradient).
pub const DENSE_MAX_VIEWS: i64 = 16_384;

/// The tile side of the dense form's kept exponentiated similarities.
const KEPT_TILE: i64 = 1024;

/// Settings of [`NtXent`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct NtXentConfig {
    /// τ, the softmax temperature (the initial one when learnt); at least 2/700 ≈ 0.0029.
    /// The default 0.5 is SimCLR's best value on CIFAR-10 (Chen et al. 2020, Appendix B.9).
    pub temperature: f64,
    /// Whether τ is learnt, as the log-scale `logit_scale` = ln(1/τ) under the path given to
    /// [`NtXentConfig::build_in`], capped at 1/τ ≤ 100 as CLIP does (default false; call
    /// [`PairLoss::after_step`] after each optimiser step).
    pub learnable_temperature: bool,
}

impl Default for NtXentConfig {
    fn default() -> Self {
        Self { temperature: 0.5, learnable_temperature: false }
    }
}

/// The largest learnt logit scale 1/τ (CLIP's clamp, Radford et al. 2021, Sec. 2.5).
const MAX_LOGIT_SCALE: f64 = 100.0;

impl NtXentConfig {
    /// Validates the config and builds the loss with a fixed temperature.
    ///
    /// # Errors
    /// [`LossError::InvalidConfig`] naming `temperature` when it is not a finite number
    /// ≥ 2/700, or `learnable_temperature` when it is set (a learnt τ needs
    /// [`NtXentConfig::build_in`]).
    pub fn build(self) -> Result<NtXent> {
        if self.learnable_temperature {
            return Err(LossError::InvalidConfig {
                field: "learnable_temperature",
                value: "true".into(),
                reason: "a learnt temperature needs a variable store: use NtXentConfig::build_in",
            });
        }
        check_shift_temperature(self.temperature)?;
        Ok(NtXent {
            temperature: self.temperature,
            log_scale: None,
            workspace: Workspace::default(),
        })
    }

    /// Validates the config and builds the loss; a learnt temperature is the variable
    /// `logit_scale` under `p`, trained with the encoder.
    ///
    /// # Errors
    /// As [`NtXentConfig::build`], and `temperature` when a learnt τ starts below 1/100.
    pub fn build_in(self, p: &nn::Path) -> Result<NtXent> {
        if !self.learnable_temperature {
            return self.build();
        }
        check_shift_temperature(self.temperature)?;
        if 1.0 / self.temperature > MAX_LOGIT_SCALE {
            return Err(LossError::InvalidConfig {
                field: "temperature",
                value: self.temperature.to_string(),
                reason: "a learnt temperature starts at ≥ 0.01 (its scale 1/τ is clamped at 100)",
            });
        }
        let var = p.var("logit_scale", &[], nn::Init::Const((1.0 / self.temperature).ln()));
        let log_scale = LogitScale::new(var, MAX_LOGIT_SCALE);
        Ok(NtXent {
            temperature: self.temperature,
            log_scale: Some(log_scale),
            workspace: Workspace::default(),
        })
    }
}

/// NT-Xent: each view's positive is the other view of its sample, its negatives the other
/// 2N − 2 views of the batch.
///
/// Paper: Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of
/// Visual Representations", ICML 2020, <https://arxiv.org/abs/2002.05709>, Eq. (1).
///
/// ```text
/// sim(u, v) = uᵀv / (‖u‖ ‖v‖)
/// ℓ(i, j)  = −log [ exp(sim(zᵢ, zⱼ)/τ) / Σ_{k=1..2N, k≠i} exp(sim(zᵢ, zₖ)/τ) ]
/// L        = 1/(2N) Σ_{k=1..N} [ ℓ(2k−1, 2k) + ℓ(2k, 2k−1) ]
/// ```
///
/// The similarity matrix is symmetric, so it is computed in tiles on and above its
/// diagonal, exponentiated with the fixed shift 1/τ (an upper bound of every cosine / τ), and
/// kept, in a scratch buffer the loss reuses across calls, for the gradient with respect to
/// the normalised views, which is computed right away (when the views require it) as
/// `((P + Pᵀ) z − 2 z_p) / (2Nτ)` and attached through a surrogate, so autograd carries it
/// into the encoder (first derivatives only). That is half the matrix products of autograd
/// through a dense softmax, and no fresh 2N × 2N allocation per call. Batches of more than
/// [`DENSE_MAX_VIEWS`] views recompute the tiles instead of keeping them, in O(N · tile)
/// memory (see [`crate::TiledNtXent`]). f16 / bf16 inputs are upcast to f32; τ < 0.025 is
/// computed in f64 (e^{−2/τ} would underflow f32).
///
/// With a learnt temperature (`learnable_temperature`), ∂L/∂(1/τ) = (τ/2) Σᵢ zᵢ·(∂L/∂zᵢ)
/// (L depends on the unit z only through zᵢ·zₖ/τ) is attached to the variable the same way,
/// also when the views do not require a gradient (calibrating τ on a frozen encoder). As in
/// CLIP, the variable is clipped at 1/τ ≤ 100 after each optimiser step
/// ([`PairLoss::after_step`]); between steps the forward caps τ by a straight-through clamp, so
/// the variable keeps a gradient above the cap.
///
/// # Shapes
/// `z1`, `z2`: `[N, D]`, row `i` of each being the two views of sample `i` → 0-dim mean.
///
/// # Panics
/// When `z1` and `z2` are not both `[N, D]` with the same `N ≥ 1` and `D`.
///
/// # Example
/// ```
/// use ssl_loss::{NtXentConfig, PairLoss};
/// let z = tch::Tensor::ones([4, 8], (tch::Kind::Double, tch::Device::Cpu));
/// let loss = NtXentConfig::default().build()?.forward(&z, &z).double_value(&[]);
/// assert!((loss - 7f64.ln()).abs() < 1e-12); // all views equal: ln(2N − 1)
/// # Ok::<(), ssl_loss::LossError>(())
/// ```
#[derive(Debug)]
pub struct NtXent {
    temperature: f64,
    log_scale: Option<LogitScale>,
    workspace: Workspace,
}

impl Clone for NtXent {
    /// A clone shares a learnt temperature's variable and starts with its own scratch buffer.
    fn clone(&self) -> Self {
        Self {
            temperature: self.temperature,
            log_scale: self.log_scale.as_ref().map(LogitScale::shallow_clone),
            workspace: Workspace::default(),
        }
    }
}

impl NtXent {
    /// τ, the temperature the next forward uses (a learnt one read from its variable).
    pub fn temperature(&self) -> f64 {
        match &self.log_scale {
            Some(t) => 1.0 / t.value(),
            None => self.temperature,
        }
    }
}

impl PairLoss for NtXent {
    fn f_forward(&self, z1: &Tensor, z2: &Tensor) -> Result<Tensor> {
        check_views("NtXent", z1, z2, 1)?;
        let (tiles, tile) = if 2 * z1.size()[0] > DENSE_MAX_VIEWS {
            (Tiles::Recomputed, TiledNtXentConfig::default().tile)
        } else {
            (Tiles::Kept, KEPT_TILE)
        };
        let tau = self.temperature();
        let ws = &self.workspace;
        let Some(log_scale) = &self.log_scale else {
            return Ok(symmetric_tiles::nt_xent(z1, z2, tau, tile, tiles, ws, false).0);
        };
        let (loss, z_dot_g) = symmetric_tiles::nt_xent(z1, z2, tau, tile, tiles, ws, true);
        // β = 1/τ, capped at 100 with a straight-through gradient (see `LogitScale`).
        let beta = log_scale.scale().to_kind(loss.kind());
        let d_beta = z_dot_g * (tau / 2.0); // 0-dim, detached: ∂L/∂β
        Ok(loss + (&beta - beta.detach()) * d_beta)
    }

    /// Clips a learnt `logit_scale` at ln 100 (CLIP's step after each optimiser update).
    fn after_step(&self) {
        if let Some(log_scale) = &self.log_scale {
            log_scale.clamp_();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn loss(tau: f64, z1: &Tensor, z2: &Tensor) -> f64 {
        NtXentConfig { temperature: tau, ..Default::default() }
            .build()
            .unwrap()
            .forward(z1, z2)
            .double_value(&[])
    }

    #[test]
    fn identical_embeddings_give_ln_2n_minus_1() {
        for n in [1i64, 2, 5] {
            let z = Tensor::ones([n, 3], (Kind::Double, Device::Cpu)) * 0.7;
            let want = ((2 * n - 1) as f64).ln();
            assert!((loss(0.1, &z, &z) - want).abs() < 1e-12, "n = {n}");
        }
    }

    #[test]
    fn orthonormal_rows_give_the_closed_form() {
        // z1 = z2 = I: positive cosine 1, all 2N − 2 negatives cosine 0.
        let (n, tau) = (4i64, 0.2f64);
        let z = Tensor::eye(n, (Kind::Double, Device::Cpu));
        let want = (1.0 + (2 * n - 2) as f64 * (-1.0 / tau).exp()).ln();
        assert!((loss(tau, &z, &z) - want).abs() < 1e-12);
    }

    /// NT-Xent from its definition, in f64 and 128-row chunks (never a full 2N × 2N matrix),
    /// with two wrong variants from the same logits: `(right, without the self-mask, with
    /// view i's positive at i + N + 1 instead of i + N)`.
    fn chunked_definition(z1: &Tensor, z2: &Tensor, tau: f64) -> (f64, f64, f64) {
        let z = crate::l2_normalize(&Tensor::cat(&[z1, z2], 0).to_kind(Kind::Double), 1e-12);
        let m = z.size()[0];
        let mut sums = [0.0; 3];
        for (start, len) in symmetric_tiles::tile_ranges(m, 128) {
            let mut logits = z.narrow(0, start, len).matmul(&z.tr()) / tau; // [len, 2N]
            let rows = Tensor::arange(len, (Kind::Int64, Device::Cpu)); // [len]
            let logit_at = |shift: i64| {
                let cols = (&rows + start + shift).remainder(m).unsqueeze(1); // [len, 1]
                logits.gather(1, &cols, false).sum(Kind::Double).double_value(&[])
            };
            let (pos, wrong_pos) = (logit_at(m / 2), logit_at(m / 2 + 1));
            let lse = |l: &Tensor| l.logsumexp([1i64].as_slice(), false).sum(Kind::Double);
            let unmasked = lse(&logits).double_value(&[]);
            let own = (Some(rows.shallow_clone()), Some(&rows + start));
            let _ = logits.index_put_(&[own.0, own.1], &Tensor::from(f64::NEG_INFINITY), false);
            let masked = lse(&logits).double_value(&[]);
            for (sum, v) in sums.iter_mut().zip([masked - pos, unmasked - pos, masked - wrong_pos])
            {
                *sum += v;
            }
        }
        let [right, unmasked, shifted] = sums.map(|s| s / m as f64);
        (right, unmasked, shifted)
    }

    #[test]
    fn batches_above_the_dense_limit_match_the_definition() {
        // 2N = 16,386 views > DENSE_MAX_VIEWS: the tiled path, never a 1 GiB logits matrix.
        // Random rows with noisy positives, so that a wrong positive index or a missing
        // self-mask moves the loss far more than the tolerance (checked below).
        let _rng = ssl_testutil::seed_global_rng(11);
        let n = DENSE_MAX_VIEWS / 2 + 1;
        let z1 = Tensor::randn([n, 8], (Kind::Float, Device::Cpu));
        let z2 = &z1 + Tensor::randn([n, 8], (Kind::Float, Device::Cpu)) * 0.3;
        let got = loss(0.2, &z1, &z2);
        let (want, unmasked, shifted) = chunked_definition(&z1, &z2, 0.2);
        let tol = 2e-6; // f32 sums over 16,386 terms; measured 1.1e-7
        assert!((got - want).abs() < tol, "{got} vs {want}");
        assert!((unmasked - want).abs() > 100.0 * tol, "self-mask visible: {unmasked} vs {want}");
        assert!((shifted - want).abs() > 100.0 * tol, "positive visible: {shifted} vs {want}");
    }

    #[test]
    fn half_inputs_are_computed_in_float() {
        let z = Tensor::eye(4, (Kind::Half, Device::Cpu));
        let l = NtXentConfig { temperature: 0.05, ..Default::default() }
            .build()
            .unwrap()
            .forward(&z, &z);
        assert_eq!(l.kind(), Kind::Float);
        let want = (1.0 + 6.0 * (-20.0f64).exp()).ln();
        assert!((l.double_value(&[]) - want).abs() < 1e-6);
    }

    #[test]
    fn non_positive_temperature_is_rejected_naming_the_field() {
        for tau in [0.0, -1.0, f64::NAN, 0.002] {
            let cfg = NtXentConfig { temperature: tau, ..Default::default() };
            let err = cfg.build().unwrap_err().to_string();
            assert!(err.contains("temperature"), "{err}");
        }
    }

    /// NT-Xent by autograd through the dense softmax, with the logit scale β = 1/τ a tensor.
    fn dense_with_scale(z1: &Tensor, z2: &Tensor, beta: &Tensor) -> Tensor {
        let n = z1.size()[0];
        let z = crate::l2_normalize(&Tensor::cat(&[z1, z2], 0), 1e-12);
        let mut logits = z.matmul(&z.tr()) * beta; // [2N, 2N]
        let _ = logits.fill_diagonal_(f64::NEG_INFINITY, false);
        let targets = (Tensor::arange(2 * n, (Kind::Int64, Device::Cpu)) + n).remainder(2 * n);
        logits.log_softmax(-1, Kind::Double).nll_loss(&targets)
    }

    #[test]
    fn a_learnt_temperature_gets_the_gradient_of_the_dense_form() {
        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(Kind::Double);
        let cfg = NtXentConfig { temperature: 0.3, learnable_temperature: true };
        let loss = cfg.build_in(&vs.root()).unwrap();
        let var = vs.variables().remove("logit_scale").expect("the variable logit_scale");
        let z1 = Tensor::randn([6, 4], (Kind::Double, Device::Cpu)).set_requires_grad(true);
        let z2 = Tensor::randn([6, 4], (Kind::Double, Device::Cpu)).set_requires_grad(true);
        let l = loss.forward(&z1, &z2);
        let got = Tensor::run_backward(&[&l], &[&var, &z1, &z2], false, false);
        let t = var.detach().set_requires_grad(true);
        let want_l = dense_with_scale(&z1, &z2, &t.exp());
        let want = Tensor::run_backward(&[&want_l], &[&t, &z1, &z2], false, false);
        assert!((l.double_value(&[]) - want_l.double_value(&[])).abs() < 1e-12);
        for (g, w) in got.iter().zip(&want) {
            let err = f64::try_from((g - w).abs().max()).unwrap();
            assert!(err < 1e-12, "gradient off by {err}: {g} vs {w}");
        }
        assert!((loss.temperature() - 0.3).abs() < 1e-12);
    }

    #[test]
    fn a_learnt_temperature_gets_its_gradient_over_frozen_views() {
        // Calibrating τ on a frozen encoder: the views need no gradient, the variable does.
        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(Kind::Double);
        let cfg = NtXentConfig { temperature: 0.2, learnable_temperature: true };
        let loss = cfg.build_in(&vs.root()).unwrap();
        let var = vs.variables().remove("logit_scale").unwrap();
        let z1 = Tensor::randn([5, 3], (Kind::Double, Device::Cpu));
        let z2 = Tensor::randn([5, 3], (Kind::Double, Device::Cpu));
        let l = loss.forward(&z1, &z2);
        let got = Tensor::run_backward(&[&l], &[&var], false, false).remove(0);
        let t = var.detach().set_requires_grad(true);
        let want_l = dense_with_scale(&z1, &z2, &t.exp());
        let want = Tensor::run_backward(&[&want_l], &[&t], false, false).remove(0);
        assert!(want.double_value(&[]).abs() > 1e-3, "a case with a visible gradient");
        assert!((got - want).abs().double_value(&[]) < 1e-12);
    }

    #[test]
    fn a_learnt_scale_past_the_cap_keeps_its_gradient_and_comes_back() {
        // Views e₁, e₂ | e₂, e₁: each view's positive is at cosine 0, one negative at 1, so
        // ℓ = ln(2 + e^β) falls as β = 1/τ falls, and ∂L/∂t = β e^β / (2 + e^β) with t = ln β.
        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(Kind::Double);
        let cfg = NtXentConfig { temperature: 0.5, learnable_temperature: true };
        let loss = cfg.build_in(&vs.root()).unwrap();
        let mut var = vs.variables().remove("logit_scale").unwrap();
        let _ = tch::no_grad(|| var.fill_(1000f64.ln())); // momentum carried t past ln 100
        assert!((loss.temperature() - 0.01).abs() < 1e-12, "the forward caps β at 100");
        let z1 = Tensor::eye(2, (Kind::Double, Device::Cpu));
        let z2 = z1.flip([0]);
        let sgd = |var: &mut Tensor| {
            let l = loss.forward(&z1, &z2);
            let g = Tensor::run_backward(&[&l], &[&*var], false, false).remove(0);
            tch::no_grad(|| *var -= &g * 0.01);
            loss.after_step();
            (l.double_value(&[]), g.double_value(&[]))
        };
        let (l, g) = sgd(&mut var);
        let beta = 100f64;
        assert!((l - (2.0 + beta.exp()).ln()).abs() < 1e-9, "{l}");
        let want = beta * beta.exp() / (2.0 + beta.exp());
        assert!((g - want).abs() < 1e-9, "∂L/∂t = {g}, want {want} (a hard clamp gives 0)");
        // t = ln 1000 − 1 is still past the cap: the after-step clip puts it on ln 100.
        assert!((var.double_value(&[]) - beta.ln()).abs() < 1e-12);
        let _ = sgd(&mut var);
        let t = beta.ln() - 0.01 * want;
        assert!((var.double_value(&[]) - t).abs() < 1e-9);
        assert!((loss.temperature() - (-t).exp()).abs() < 1e-12, "back below the cap");
    }

    #[test]
    fn a_learnt_temperature_without_a_variable_store_is_rejected_naming_the_field() {
        let cfg = NtXentConfig { learnable_temperature: true, ..Default::default() };
        let err = cfg.build().unwrap_err().to_string();
        assert!(err.contains("learnable_temperature") && err.contains("build_in"), "{err}");
        let vs = nn::VarStore::new(Device::Cpu);
        let cold = NtXentConfig { temperature: 0.005, learnable_temperature: true };
        let err = cold.build_in(&vs.root()).unwrap_err().to_string();
        assert!(err.contains("temperature"), "{err}");
    }

    #[test]
    fn a_second_call_reusing_the_scratch_buffer_gives_the_same_value() {
        let loss = NtXentConfig::default().build().unwrap();
        let z1 = Tensor::randn([9, 5], (Kind::Float, Device::Cpu));
        let z2 = Tensor::randn([9, 5], (Kind::Float, Device::Cpu));
        let first = loss.forward(&z1, &z2).double_value(&[]);
        let _ = loss.forward(&z2, &z2);
        assert_eq!(loss.forward(&z1, &z2).double_value(&[]), first);
    }

    #[test]
    fn f_forward_returns_the_shape_error_naming_both_shapes() {
        let a = Tensor::zeros([4, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([3, 8], (Kind::Float, Device::Cpu));
        let err = NtXentConfig::default().build().unwrap().f_forward(&a, &b).unwrap_err();
        assert!(matches!(err, crate::LossError::Shape { loss: "NtXent", .. }), "{err:?}");
        assert!(err.to_string().contains("z1 [4, 8] and z2 [3, 8]"), "{err}");
    }

    #[test]
    #[should_panic(expected = "z1 [4, 8] and z2 [4, 7]")]
    fn mismatched_shapes_panic_naming_both() {
        let a = Tensor::zeros([4, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([4, 7], (Kind::Float, Device::Cpu));
        let _ = NtXentConfig::default().build().unwrap().forward(&a, &b);
    }
}
