//! Negative cosine similarity between predictions and targets (BYOL, SimSiam).

use tch::Tensor;

use crate::ops::{check_views, unit_pair};
use crate::{PairLoss, Result};

/// Which of the two equivalent forms [`NegativeCosine`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum CosineForm {
    /// SimSiam's D(p, z) = −cos(p, z), in [−1, 1].
    #[default]
    NegativeCosine,
    /// BYOL's ‖p̂ − ẑ‖² = 2 − 2·cos(p, z), in [0, 4].
    NormalizedMse,
}

/// How [`NegativeCosine::forward_symmetric`] combines the two directions: the papers differ by
/// a factor 2 in both the loss and its gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Symmetrization {
    /// SimSiam (Chen & He 2021, Eq. 2): L = ½ D(p₁, z₂) + ½ D(p₂, z₁).
    #[default]
    Mean,
    /// BYOL (Grill et al. 2020, Eq. 2 and Sec. 3.1): L^BYOL = L + L̃ = D(p₁, z₂) + D(p₂, z₁),
    /// "we symmetrize the loss … by separately feeding v′ to the online network and v to the
    /// target network to compute L̃".
    Sum,
}

/// Settings of [`NegativeCosine`]. The presets [`NegativeCosineConfig::simsiam`] and
/// [`NegativeCosineConfig::byol`] carry each paper's form; the default is SimSiam's.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct NegativeCosineConfig {
    /// The reported form; both have the same gradient up to the factor 2.
    pub form: CosineForm,
    /// How the symmetric loss combines its two directions (mean or sum).
    pub symmetrization: Symmetrization,
}

impl NegativeCosineConfig {
    /// SimSiam (Chen & He 2021, Eq. 1–2): D = −cos, symmetrised as the mean ½(L + L̃).
    pub fn simsiam() -> Self {
        Self { form: CosineForm::NegativeCosine, symmetrization: Symmetrization::Mean }
    }

    /// BYOL (Grill et al. 2020, Eq. 2): D = ‖p̂ − ẑ‖² = 2 − 2 cos, symmetrised as the sum
    /// L + L̃.
    pub fn byol() -> Self {
        Self { form: CosineForm::NormalizedMse, symmetrization: Symmetrization::Sum }
    }

    /// Builds the loss (every config is valid; `Result` for the uniform `build` API).
    ///
    /// # Errors
    /// None today.
    pub fn build(self) -> Result<NegativeCosine> {
        Ok(NegativeCosine { form: self.form, symmetrization: self.symmetrization })
    }
}

/// The mean negative cosine similarity of predictions p and targets z, row by row.
///
/// Paper: Chen, He, "Exploring Simple Siamese Representation Learning", CVPR 2021,
/// <https://arxiv.org/abs/2011.10566>, Eq. (1)–(2); the normalised-MSE form: Grill et al.,
/// "Bootstrap Your Own Latent", NeurIPS 2020, <https://arxiv.org/abs/2006.07733>, Eq. (2).
///
/// ```text
/// D(p, z) = −(p/‖p‖₂)·(z/‖z‖₂)                        (NegativeCosine)
/// D(p, z) = ‖p/‖p‖₂ − z/‖z‖₂‖² = 2 + 2·(−cos(p, z))   (NormalizedMse)
/// L = ½ D(p₁, stopgrad(z₂)) + ½ D(p₂, stopgrad(z₁))     (symmetric, Mean: SimSiam Eq. 2)
/// L = D(p₁, stopgrad(z₂)) + D(p₂, stopgrad(z₁))         (symmetric, Sum: BYOL's L + L̃)
/// ```
///
/// The stop-gradient is the caller's: pass `z.detach()` (SimSiam) or the momentum encoder's
/// output (BYOL). [`PairLoss::forward`] is D(p, z) averaged over the batch;
/// [`NegativeCosine::forward_symmetric`] is the symmetrised L. f16 / bf16 inputs are upcast to
/// f32.
///
/// # Shapes
/// `p`, `z`: `[N, D]` → 0-dim mean.
///
/// # Panics
/// When `p` and `z` are not both `[N, D]` with N ≥ 1.
///
/// # Example
/// ```
/// use ssl_loss::{NegativeCosineConfig, PairLoss};
/// let z = tch::Tensor::randn([4, 8], (tch::Kind::Double, tch::Device::Cpu));
/// let loss = NegativeCosineConfig::default().build()?.forward(&z, &(&z * 3.0));
/// assert!((loss.double_value(&[]) + 1.0).abs() < 1e-12); // D(z, z) = −1
/// # Ok::<(), ssl_loss::LossError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct NegativeCosine {
    form: CosineForm,
    symmetrization: Symmetrization,
}

impl NegativeCosine {
    /// Each view's prediction against the other view's target: ½ D(p₁, z₂) + ½ D(p₂, z₁) with
    /// [`Symmetrization::Mean`] (SimSiam), D(p₁, z₂) + D(p₂, z₁) with [`Symmetrization::Sum`]
    /// (BYOL).
    ///
    /// # Panics
    /// When the four inputs are not all `[N, D]` of one shape.
    pub fn forward_symmetric(&self, p1: &Tensor, z1: &Tensor, p2: &Tensor, z2: &Tensor) -> Tensor {
        self.f_forward_symmetric(p1, z1, p2, z2).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`NegativeCosine::forward_symmetric`], returning the shape error.
    ///
    /// # Errors
    /// [`crate::LossError::Shape`] when the four inputs are not all `[N, D]` of one shape.
    pub fn f_forward_symmetric(
        &self,
        p1: &Tensor,
        z1: &Tensor,
        p2: &Tensor,
        z2: &Tensor,
    ) -> Result<Tensor> {
        check_views("NegativeCosine", p1, p2, 1)?;
        check_views("NegativeCosine", z1, z2, 1)?;
        let both = self.f_forward(p1, z2)? + self.f_forward(p2, z1)?;
        Ok(match self.symmetrization {
            Symmetrization::Mean => both * 0.5,
            Symmetrization::Sum => both,
        })
    }
}

impl PairLoss for NegativeCosine {
    fn f_forward(&self, p: &Tensor, z: &Tensor) -> Result<Tensor> {
        check_views("NegativeCosine", p, z, 1)?;
        let (p, z) = unit_pair(p, z); // [N, D] each
        let cos = (&p * &z).sum_dim_intlist([1i64].as_slice(), false, p.kind()); // [N]
        let neg = -cos.mean(p.kind());
        Ok(match self.form {
            CosineForm::NegativeCosine => neg,
            CosineForm::NormalizedMse => neg * 2.0 + 2.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l2_normalize;
    use tch::{Device, Kind};

    fn loss(form: CosineForm) -> NegativeCosine {
        NegativeCosineConfig { form, ..Default::default() }.build().unwrap()
    }

    #[test]
    fn hand_computed_cosines() {
        // Rows: (1, 0)·(0, 5) → 0; (1, 1)·(2, 2) → 1; (3, 4)·(−3, −4) → −1. Mean cosine 0.
        let p = Tensor::from_slice(&[1.0f64, 0.0, 1.0, 1.0, 3.0, 4.0]).view([3, 2]);
        let z = Tensor::from_slice(&[0.0f64, 5.0, 2.0, 2.0, -3.0, -4.0]).view([3, 2]);
        let d = loss(CosineForm::NegativeCosine).forward(&p, &z).double_value(&[]);
        assert!(d.abs() < 1e-12, "{d}");
        // Only the first row: −cos = 0, and ‖p̂ − ẑ‖² = ‖(1, −1)‖² = 2.
        let (p0, z0) = (p.narrow(0, 0, 1), z.narrow(0, 0, 1));
        let mse = loss(CosineForm::NormalizedMse).forward(&p0, &z0).double_value(&[]);
        assert!((mse - 2.0).abs() < 1e-12, "{mse}");
    }

    #[test]
    fn normalized_mse_is_the_mean_squared_distance_of_unit_vectors() {
        let _rng = ssl_testutil::seed_global_rng(4);
        let p = Tensor::randn([6, 5], (Kind::Double, Device::Cpu));
        let z = Tensor::randn([6, 5], (Kind::Double, Device::Cpu));
        let direct = (l2_normalize(&p, 1e-12) - l2_normalize(&z, 1e-12))
            .square()
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Double)
            .mean(Kind::Double);
        let got = loss(CosineForm::NormalizedMse).forward(&p, &z);
        assert!((got - direct).abs().double_value(&[]) < 1e-12);
    }

    #[test]
    fn the_symmetric_form_pairs_each_prediction_with_the_other_views_target() {
        let e = Tensor::eye(2, (Kind::Double, Device::Cpu));
        let (x, y) = (e.narrow(0, 0, 1), e.narrow(0, 1, 1)); // (1, 0) and (0, 1)
                                                             // p₁ = x, z₁ = y, p₂ = y, z₂ = x: ½ D(x, x) + ½ D(y, y) = −1. Pairing each prediction
                                                             // with its own view's target instead would give ½ D(x, y) + ½ D(y, x) = 0.
        let l = loss(CosineForm::NegativeCosine).forward_symmetric(&x, &y, &y, &x);
        assert!((l.double_value(&[]) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn simsiam_averages_the_two_directions_and_byol_adds_them() {
        // p₁ = (1, 0), z₂ = (1, 1): cos = 1/√2. p₂ = (0, 1), z₁ = (0, −1): cos = −1.
        let t = |v: [f64; 2]| Tensor::from_slice(&v).view([1, 2]);
        let (p1, z2, p2, z1) = (t([1.0, 0.0]), t([1.0, 1.0]), t([0.0, 1.0]), t([0.0, -1.0]));
        let c = std::f64::consts::FRAC_1_SQRT_2;
        // SimSiam: ½(−1/√2) + ½(1).
        let simsiam = NegativeCosineConfig::simsiam().build().unwrap();
        let got = simsiam.forward_symmetric(&p1, &z1, &p2, &z2).double_value(&[]);
        assert!((got - 0.5 * (1.0 - c)).abs() < 1e-12, "{got}");
        // BYOL: (2 − 2/√2) + (2 + 2) = L + L̃, twice the mean of the two directions.
        let byol = NegativeCosineConfig::byol().build().unwrap();
        let got = byol.forward_symmetric(&p1, &z1, &p2, &z2).double_value(&[]);
        assert!((got - (6.0 - 2.0 * c)).abs() < 1e-12, "{got}");
    }

    #[test]
    #[should_panic(expected = "z1 [3, 4] and z2 [3, 5]")]
    fn mismatched_shapes_panic_naming_both() {
        let a = Tensor::zeros([3, 4], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([3, 5], (Kind::Float, Device::Cpu));
        let _ = loss(CosineForm::NegativeCosine).forward(&a, &b);
    }
}
