//! DenseCL's dense loss: per-location InfoNCE between matched locations of two views.

use tch::Tensor;

use crate::error::ensure;
use crate::ops::l2_normalize;
use crate::{InfoNce, InfoNceConfig, Result};

/// Settings of [`DenseClLoss`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct DenseClLossConfig {
    /// τ of the per-location InfoNCE (paper: 0.2, as MoCo v2).
    pub temperature: f64,
}

impl Default for DenseClLossConfig {
    fn default() -> Self {
        Self { temperature: 0.2 }
    }
}

impl DenseClLossConfig {
    /// Validates the config and builds the loss.
    ///
    /// # Errors
    /// [`crate::LossError::InvalidConfig`] when `temperature` is not a finite positive number.
    pub fn build(self) -> Result<DenseClLoss> {
        let info_nce = InfoNceConfig { temperature: self.temperature }.build()?;
        Ok(DenseClLoss { info_nce })
    }
}

/// The dense contrastive loss of DenseCL: each query location's positive is the key location
/// whose backbone feature is most similar to its own; negatives come from a dense queue.
///
/// Paper: Wang, Zhang, Shen, Kong, Li, "Dense Contrastive Learning for Self-Supervised Visual
/// Pre-Training", CVPR 2021, <https://arxiv.org/abs/2011.09157>, Eq. (2)–(3).
///
/// ```text
/// Fq, Fk ∈ [N, C, S]: backbone features of the two views (S = H·W locations)
/// j(i) = argmax_j cos(Fq[:, i], Fk[:, j])                        per sample
/// L = 1/(N S) Σ_{n, i} −log [ exp(rᵢ·t_{j(i)}/τ) / (exp(rᵢ·t_{j(i)}/τ) + Σ_k exp(rᵢ·nₖ/τ)) ]
/// r, t ∈ [N, D, S]: dense projections of query and key; nₖ ∈ [K, D]: the dense negatives
/// ```
///
/// The matching carries no gradient (argmax); the keys are detached by the caller (momentum
/// encoder), as in MoCo. Each location is one [`crate::InfoNce`] term, so normalisation and
/// dtypes follow [`crate::InfoNce::forward_with_negatives`]. DenseCL mixes this with the global
/// MoCo loss as (1 − λ)·L_global + λ·L_dense, λ = 0.5; that sum is the caller's.
///
/// # Shapes
/// `query`, `key`: `[N, D, S]` dense projections; `query_features`, `key_features`: `[N, C, S]`
/// backbone features; `negatives`: `[K, D]` → 0-dim mean over the N·S locations.
///
/// # Panics
/// When the shapes disagree (the message names them).
///
/// # Example
/// ```
/// use ssl_loss::DenseClLossConfig;
/// use tch::{Device, Kind, Tensor};
/// let loc = Tensor::eye(3, (Kind::Double, Device::Cpu)).view([1, 3, 3]); // [N 1, D 3, S 3]
/// let queue = Tensor::zeros([2, 3], (Kind::Double, Device::Cpu)); // orthogonal negatives
/// let l = DenseClLossConfig { temperature: 1.0 }.build()?.forward(&loc, &loc, &loc, &loc, &queue);
/// assert!((l.double_value(&[]) - (1.0 + 2.0 * (-1f64).exp()).ln()).abs() < 1e-12);
/// # Ok::<(), ssl_loss::LossError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DenseClLoss {
    info_nce: InfoNce,
}

impl DenseClLoss {
    /// For every query location, the index of its matched key location: `[N, S]` int64.
    ///
    /// # Panics
    /// When the features are not `[N, C, S]` and `[N, C, S′]` with the same N and C.
    pub fn correspondence(&self, query_features: &Tensor, key_features: &Tensor) -> Tensor {
        self.f_correspondence(query_features, key_features).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`DenseClLoss::correspondence`], returning the shape error.
    ///
    /// # Errors
    /// [`crate::LossError::Shape`] when the features are not `[N, C, S]` and `[N, C, S′]`.
    pub fn f_correspondence(
        &self,
        query_features: &Tensor,
        key_features: &Tensor,
    ) -> Result<Tensor> {
        let (a, b) = (query_features.size(), key_features.size());
        ensure(a.len() == 3 && b.len() == 3 && a[..2] == b[..2], "DenseClLoss", || {
            format!(
                "query_features {a:?} and key_features {b:?} must be [N, C, S] with the same N, C"
            )
        })?;
        Ok(tch::no_grad(|| {
            let fq = l2_normalize(&query_features.transpose(1, 2), 1e-12); // [N, S, C]
            let fk = l2_normalize(&key_features.transpose(1, 2), 1e-12); // [N, S′, C]
            fq.bmm(&fk.transpose(1, 2)).argmax(2, false) // [N, S, S′] → [N, S]
        }))
    }

    /// The mean per-location InfoNCE, as documented on [`DenseClLoss`].
    ///
    /// # Panics
    /// As documented on [`DenseClLoss`].
    pub fn forward(
        &self,
        query: &Tensor,
        key: &Tensor,
        query_features: &Tensor,
        key_features: &Tensor,
        negatives: &Tensor,
    ) -> Tensor {
        self.f_forward(query, key, query_features, key_features, negatives)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`DenseClLoss::forward`], returning the shape error.
    ///
    /// # Errors
    /// [`crate::LossError::Shape`] in the cases listed under `# Panics` on [`DenseClLoss`].
    pub fn f_forward(
        &self,
        query: &Tensor,
        key: &Tensor,
        query_features: &Tensor,
        key_features: &Tensor,
        negatives: &Tensor,
    ) -> Result<Tensor> {
        let (q, k, fq) = (query.size(), key.size(), query_features.size());
        let ok = q.len() == 3
            && k.len() == 3
            && q[..2] == k[..2]
            && fq.len() == 3
            && fq[0] == q[0]
            && fq[2] == q[2];
        ensure(ok, "DenseClLoss", || {
            format!(
                "query {q:?}, key {k:?} must be [N, D, S] and [N, D, S′], with query_features \
                 {fq:?} = [N, C, S]"
            )
        })?;
        let fk = key_features.size();
        ensure(fk.len() == 3 && fk[2] == k[2], "DenseClLoss", || {
            format!("key_features {fk:?} must be [N, C, S′] for key {k:?}")
        })?;
        let (n, d, s) = (q[0], q[1], q[2]);
        let idx = self.f_correspondence(query_features, key_features)?; // [N, S]
        let key_locations = key.transpose(1, 2); // [N, S′, D]
        let matched = key_locations.gather(1, &idx.unsqueeze(2).expand([n, s, d], false), false); // [N, S, D]
        let r = query.transpose(1, 2).reshape([n * s, d]); // [N·S, D]
        let t = matched.reshape([n * s, d]); // [N·S, D]
        self.info_nce.f_forward_with_negatives(&r, &t, negatives)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn loss(tau: f64) -> DenseClLoss {
        DenseClLossConfig { temperature: tau }.build().unwrap()
    }

    #[test]
    fn matching_follows_the_backbone_features() {
        // Key locations are the query's in reverse order: j(i) = S − 1 − i.
        let f = Tensor::eye(4, (Kind::Float, Device::Cpu)).view([1, 4, 4]); // [N, C, S]
        let reversed = f.flip([2]);
        let idx = loss(0.2).correspondence(&f, &reversed);
        assert_eq!(Vec::<i64>::try_from(idx.flatten(0, -1)).unwrap(), vec![3, 2, 1, 0]);
    }

    #[test]
    fn permuting_key_locations_with_their_features_changes_nothing() {
        let (n, d, c, s) = (2, 5, 6, 9);
        let query = Tensor::randn([n, d, s], (Kind::Double, Device::Cpu));
        let key = &query + 0.3 * Tensor::randn([n, d, s], (Kind::Double, Device::Cpu));
        let fq = Tensor::randn([n, c, s], (Kind::Double, Device::Cpu));
        let fk = &fq + 0.1 * Tensor::randn([n, c, s], (Kind::Double, Device::Cpu));
        let queue = Tensor::randn([16, d], (Kind::Double, Device::Cpu));
        let l = loss(0.2);
        let base = l.forward(&query, &key, &fq, &fk, &queue);
        let perm = Tensor::from_slice(&[4i64, 8, 0, 2, 7, 1, 3, 6, 5]);
        let moved =
            l.forward(&query, &key.index_select(2, &perm), &fq, &fk.index_select(2, &perm), &queue);
        assert!((base - moved).abs().double_value(&[]) < 1e-12);
    }

    #[test]
    #[should_panic(expected = "query_features [2, 4, 5] and key_features [3, 4, 5]")]
    fn features_of_different_batches_panic_naming_both() {
        let a = Tensor::zeros([2, 4, 5], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([3, 4, 5], (Kind::Float, Device::Cpu));
        let _ = loss(0.2).correspondence(&a, &b);
    }
}
