//! InfoNCE: a query against its positive key and a set of negative keys (CPC, MoCo).

use tch::{Kind, Reduction, Tensor};

use crate::error::ensure;
use crate::ops::{check_views, unit_pair};
use crate::queue_tiles;
use crate::symmetric_tiles::check_shift_temperature;
use crate::workspace::Workspace;
use crate::{PairLoss, Result};

/// Settings of [`InfoNce`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct InfoNceConfig {
    /// τ, the softmax temperature; must be positive. The default 0.2 is MoCo v2's (Chen, Fan,
    /// Girshick, He, "Improved Baselines with Momentum Contrastive Learning", 2020, Table 1;
    /// MoCo v1 used 0.07).
    pub temperature: f64,
}

impl Default for InfoNceConfig {
    fn default() -> Self {
        Self { temperature: 0.2 }
    }
}

impl InfoNceConfig {
    /// Validates the config and builds the loss.
    ///
    /// # Errors
    /// [`crate::LossError::InvalidConfig`] when `temperature` is not a finite number ≥ 2/700.
    pub fn build(self) -> Result<InfoNce> {
        check_shift_temperature(self.temperature)?;
        Ok(InfoNce { temperature: self.temperature, workspace: Workspace::default() })
    }
}

/// InfoNCE with cosine similarity: each query must pick its own key out of the candidates.
///
/// Paper: van den Oord, Li, Vinyals, "Representation Learning with Contrastive Predictive
/// Coding", 2018, <https://arxiv.org/abs/1807.03748>, Eq. (4); its queue form: He, Fan, Wu,
/// Xie, Girshick, "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR
/// 2020, <https://arxiv.org/abs/1911.05722>, Eq. (1).
///
/// ```text
/// q̂ = q/‖q‖, k̂ = k/‖k‖, n̂ⱼ = nⱼ/‖nⱼ‖
/// ℓᵢ = −log [ exp(q̂ᵢ·k̂ᵢ/τ) / ( exp(q̂ᵢ·k̂ᵢ/τ) + Σ_{j=1..K} exp(q̂ᵢ·n̂ⱼ/τ) ) ]
/// L  = 1/N Σᵢ ℓᵢ
/// ```
///
/// [`InfoNce::forward_with_negatives`] takes the K negatives explicitly (MoCo's queue, which
/// this loss never holds); [`PairLoss::forward`] uses the other N − 1 keys of the batch as the
/// negatives (MoCo v3's `ctr(q, k)` without its 2τ factor). The caller detaches the keys when
/// they come from a momentum encoder.
///
/// Against a queue, the `[N, K]` logits are never stored: column tiles of e^{q̂·n̂/τ − 1/τ}
/// (unit rows bound every logit by 1/τ) give the row sums and their share of the query
/// gradient while in cache, which is attached through a surrogate (first derivatives only),
/// so the work is the two `[N, K] × D` products of the logits and ∂L/∂q, in one reused
/// `N × tile` scratch buffer. The in-batch form goes through the fused `log_softmax` of
/// `cross_entropy`. f16 / bf16 inputs are upcast to f32, f64 stays f64, τ < 0.025 in f32 is
/// computed in f64.
///
/// # Shapes
/// `q`, `k`: `[N, D]` (row `i` of each from sample `i`), `negatives`: `[K, D]` → 0-dim mean.
///
/// # Panics
/// When `q` and `k` are not both `[N, D]` with N ≥ 1, or `negatives` is not `[K, D]` with
/// K ≥ 1.
///
/// # Example
/// ```
/// use ssl_loss::InfoNceConfig;
/// use tch::{Device, Kind, Tensor};
/// let q = Tensor::eye(2, (Kind::Double, Device::Cpu)); // [2, 2]
/// let queue = Tensor::zeros([3, 2], (Kind::Double, Device::Cpu)); // cosine 0 to every query
/// let l = InfoNceConfig { temperature: 1.0 }.build()?.forward_with_negatives(&q, &q, &queue);
/// assert!((l.double_value(&[]) - (1.0 + 3.0 * (-1f64).exp()).ln()).abs() < 1e-12);
/// # Ok::<(), ssl_loss::LossError>(())
/// ```
#[derive(Debug, Clone)]
pub struct InfoNce {
    temperature: f64,
    workspace: Workspace,
}

impl InfoNce {
    /// τ, the temperature this loss was built with.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The mean InfoNCE of each query against its key and the `[K, D]` `negatives`.
    ///
    /// # Panics
    /// As documented on [`InfoNce`].
    pub fn forward_with_negatives(&self, q: &Tensor, k: &Tensor, negatives: &Tensor) -> Tensor {
        self.f_forward_with_negatives(q, k, negatives).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`InfoNce::forward_with_negatives`], returning the shape error.
    ///
    /// # Errors
    /// [`crate::LossError::Shape`] when `q` and `k` are not both `[N, D]` with N ≥ 1, or
    /// `negatives` is not `[K, D]` with K ≥ 1.
    pub fn f_forward_with_negatives(
        &self,
        q: &Tensor,
        k: &Tensor,
        negatives: &Tensor,
    ) -> Result<Tensor> {
        check_views("InfoNce", q, k, 1)?;
        let (sq, sn) = (q.size(), negatives.size());
        ensure(sn.len() == 2 && sn[1] == sq[1], "InfoNce", || {
            format!("negatives {sn:?} must be [K, D] with the D of q {sq:?}")
        })?;
        // With no candidate but the key, the softmax is 1 and the loss exactly 0: no signal.
        ensure(sn[0] >= 1, "InfoNce", || {
            format!("negatives {sn:?} must hold K ≥ 1 rows (an empty queue gives a loss of 0)")
        })?;
        Ok(queue_tiles::info_nce(q, k, negatives, self.temperature, &self.workspace))
    }
}

impl PairLoss for InfoNce {
    fn f_forward(&self, q: &Tensor, k: &Tensor) -> Result<Tensor> {
        check_views("InfoNce", q, k, 1)?;
        let n = q.size()[0];
        let (q, k) = unit_pair(q, k); // [N, D] each
        let logits = q.matmul(&k.tr()) / self.temperature; // [N, N]; the diagonal is positive
        let targets = Tensor::arange(n, (Kind::Int64, q.device())); // [N]
        Ok(logits.cross_entropy_loss::<Tensor>(&targets, None, Reduction::Mean, -100, 0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn info_nce(tau: f64) -> InfoNce {
        InfoNceConfig { temperature: tau }.build().unwrap()
    }

    #[test]
    fn a_queue_orthogonal_to_the_queries_gives_the_closed_form() {
        // q = k = e₁..e₃ in 6-D; the K = 3 negatives are e₄..e₆: positive cosine 1, negatives 0.
        let (tau, eye) = (0.1, Tensor::eye(6, (Kind::Double, Device::Cpu)));
        let (q, queue) = (eye.narrow(0, 0, 3), eye.narrow(0, 3, 3) * 5.0);
        let got = info_nce(tau).forward_with_negatives(&q, &(&q * 2.0), &queue).double_value(&[]);
        let want = (1.0 + 3.0 * (-1.0 / tau).exp()).ln();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    #[test]
    fn in_batch_orthonormal_keys_give_the_closed_form() {
        // q = k = I₄: each query sees its key at cosine 1 and the N − 1 = 3 others at 0.
        let eye = Tensor::eye(4, (Kind::Double, Device::Cpu));
        let got = info_nce(0.5).forward(&eye, &eye).double_value(&[]);
        assert!((got - (1.0 + 3.0 * (-2f64).exp()).ln()).abs() < 1e-12);
    }

    #[test]
    fn identical_candidates_give_ln_of_their_count() {
        // Every logit equal: the softmax is uniform over 1 + K candidates.
        let z = Tensor::ones([5, 3], (Kind::Double, Device::Cpu));
        let queue = Tensor::ones([7, 3], (Kind::Double, Device::Cpu));
        let got = info_nce(0.3).forward_with_negatives(&z, &z, &queue).double_value(&[]);
        assert!((got - 8f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn non_positive_temperature_is_rejected_naming_the_field() {
        let err = InfoNceConfig { temperature: 0.0 }.build().unwrap_err().to_string();
        assert!(err.contains("temperature"), "{err}");
    }

    #[test]
    fn f_forward_with_negatives_returns_the_shape_error() {
        let q = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        let queue = Tensor::zeros([5], (Kind::Float, Device::Cpu));
        let err = info_nce(0.2).f_forward_with_negatives(&q, &q, &queue).unwrap_err();
        assert!(err.to_string().contains("negatives [5] must be [K, D]"), "{err}");
    }

    #[test]
    fn an_empty_queue_is_an_error_not_a_loss_of_zero() {
        let q = Tensor::eye(2, (Kind::Float, Device::Cpu));
        let empty = Tensor::zeros([0, 2], (Kind::Float, Device::Cpu));
        let err = info_nce(0.2).f_forward_with_negatives(&q, &q, &empty).unwrap_err();
        assert!(err.to_string().contains("negatives [0, 2] must hold K ≥ 1"), "{err}");
    }

    #[test]
    #[should_panic(expected = "negatives [5, 4] must be [K, D] with the D of q [2, 3]")]
    fn negatives_of_another_dimension_panic_naming_both_shapes() {
        let q = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        let queue = Tensor::zeros([5, 4], (Kind::Float, Device::Cpu));
        let _ = info_nce(0.2).forward_with_negatives(&q, &q, &queue);
    }
}
