//! SupCon: the supervised contrastive loss, whose positives are all views of the same class.

use tch::{Kind, Tensor};

use crate::error::{check_temperature, ensure};
use crate::ops::{check_views, two_view_logits};
use crate::Result;

/// Settings of [`SupCon`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct SupConConfig {
    /// τ, the softmax temperature; the default 0.07 is the reference code's (SupContrast
    /// `losses.py`, where `base_temperature` = τ makes its extra τ / base factor 1).
    pub temperature: f64,
}

impl Default for SupConConfig {
    fn default() -> Self {
        Self { temperature: 0.07 }
    }
}

impl SupConConfig {
    /// Validates the config and builds the loss.
    ///
    /// # Errors
    /// [`crate::LossError::InvalidConfig`] when `temperature` is not a finite positive number.
    pub fn build(self) -> Result<SupCon> {
        check_temperature(self.temperature)?;
        Ok(SupCon { temperature: self.temperature })
    }
}

/// Supervised contrastive loss `L^sup_out` on two views of a labelled batch.
///
/// Paper: Khosla, Teterwak, Wang, Sarna, Tian, Isola, Maschinot, Liu, Krishnan, "Supervised
/// Contrastive Learning", NeurIPS 2020, <https://arxiv.org/abs/2004.11362>, Eq. (2).
///
/// ```text
/// z = normalise([z₁; z₂]) (2N views, labels y repeated), A(i) = {a ≠ i}, P(i) = {p ∈ A(i) : y_p = yᵢ}
/// ℓᵢ = −1/|P(i)| Σ_{p∈P(i)} log( exp(zᵢ·z_p/τ) / Σ_{a∈A(i)} exp(zᵢ·z_a/τ) )
/// L  = 1/(2N) Σᵢ ℓᵢ
/// ```
///
/// With all labels distinct, P(i) is the other view only and L is [`crate::NtXent`]. |P(i)| ≥ 1
/// always (the other view of the same sample). The log-softmax is fused; f16 / bf16 inputs are
/// upcast to f32.
///
/// # Shapes
/// `z1`, `z2`: `[N, D]`, `labels`: `[N]` integer → 0-dim mean.
///
/// # Panics
/// When `z1` and `z2` are not both `[N, D]` with N ≥ 1, or `labels` is not `[N]`.
///
/// # Example
/// ```
/// use ssl_loss::SupConConfig;
/// use tch::{Device, Kind, Tensor};
/// let z = Tensor::ones([3, 4], (Kind::Double, Device::Cpu)); // every view identical
/// let y = Tensor::from_slice(&[7i64, 7, 7]);
/// let l = SupConConfig::default().build()?.forward_with_labels(&z, &z, &y).double_value(&[]);
/// assert!((l - 5f64.ln()).abs() < 1e-12); // uniform over the 2N − 1 others: ln(2N − 1)
/// # Ok::<(), ssl_loss::LossError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SupCon {
    temperature: f64,
}

impl SupCon {
    /// The mean of ℓᵢ over the 2N views of the batch; both views of sample `k` carry
    /// `labels[k]`.
    ///
    /// # Panics
    /// As documented on [`SupCon`].
    pub fn forward_with_labels(&self, z1: &Tensor, z2: &Tensor, labels: &Tensor) -> Tensor {
        self.f_forward_with_labels(z1, z2, labels).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`SupCon::forward_with_labels`], returning the shape error.
    ///
    /// # Errors
    /// [`crate::LossError::Shape`] when `z1` and `z2` are not both `[N, D]`, or `labels` is
    /// not `[N]`.
    pub fn f_forward_with_labels(
        &self,
        z1: &Tensor,
        z2: &Tensor,
        labels: &Tensor,
    ) -> Result<Tensor> {
        check_views("SupCon", z1, z2, 1)?;
        let n = z1.size()[0];
        ensure(labels.size() == [n], "SupCon", || {
            format!("labels {:?} must be [N] for z1 {:?}", labels.size(), z1.size())
        })?;
        let logits = two_view_logits(z1, z2, self.temperature); // [2N, 2N], diagonal −∞
        let log_prob = logits.log_softmax(1, logits.kind()); // [2N, 2N]
        let y = Tensor::cat(&[labels, labels], 0).to_device(logits.device()); // [2N]
        let not_self = Tensor::eye(2 * n, (Kind::Float, logits.device())).eq(0.0); // [2N, 2N]
                                                                                   // [2N, 2N]: same label, not self. Zero the rest (the diagonal's −∞ included) before summing.
        let positive = y.unsqueeze(1).eq_tensor(&y.unsqueeze(0)).logical_and(&not_self);
        let zero = Tensor::zeros([], (log_prob.kind(), log_prob.device()));
        let picked = log_prob.where_self(&positive, &zero); // [2N, 2N]
        let kind = log_prob.kind();
        let count = positive.sum_dim_intlist([1i64].as_slice(), false, kind); // [2N], ≥ 1
        let per_anchor = -picked.sum_dim_intlist([1i64].as_slice(), false, kind) / count; // [2N]
        Ok(per_anchor.mean(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NtXentConfig, PairLoss};
    use tch::Device;

    #[test]
    fn distinct_labels_reduce_to_nt_xent() {
        let z1 = Tensor::randn([6, 5], (Kind::Double, Device::Cpu));
        let z2 = Tensor::randn([6, 5], (Kind::Double, Device::Cpu));
        let y = Tensor::arange(6, (Kind::Int64, Device::Cpu));
        let sup =
            SupConConfig { temperature: 0.3 }.build().unwrap().forward_with_labels(&z1, &z2, &y);
        let nt = NtXentConfig { temperature: 0.3, ..Default::default() }
            .build()
            .unwrap()
            .forward(&z1, &z2);
        assert!((sup - nt).abs().double_value(&[]) < 1e-12);
    }

    #[test]
    fn two_classes_of_orthonormal_samples_give_the_closed_form() {
        // z1 = z2 = I₄ and labels (0, 0, 1, 1). Anchor i sees its own other view at cosine 1,
        // everything else at 0: log-probabilities 1/τ − lse and −lse, lse = ln(e^{1/τ} + 6).
        // P(i) holds the other view and both views of the class mate: ℓ = lse − (1/τ)/3.
        let tau = 0.5f64;
        let z = Tensor::eye(4, (Kind::Double, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 0, 1, 1]);
        let lse = ((1.0 / tau).exp() + 6.0).ln();
        let want = lse - (1.0 / tau) / 3.0;
        let got =
            SupConConfig { temperature: tau }.build().unwrap().forward_with_labels(&z, &z, &y);
        assert!((got.double_value(&[]) - want).abs() < 1e-12);
    }

    #[test]
    #[should_panic(expected = "labels [3] must be [N] for z1 [4, 2]")]
    fn labels_of_the_wrong_length_panic_naming_both_shapes() {
        let z = Tensor::zeros([4, 2], (Kind::Float, Device::Cpu));
        let _ = SupConConfig::default().build().unwrap().forward_with_labels(
            &z,
            &z,
            &Tensor::from_slice(&[0i64, 1, 2]),
        );
    }
}
