//! SwAV's swapped prediction with Sinkhorn-Knopp codes (Caron et al. 2020).

use tch::Tensor;

use crate::error::{check_temperature, ensure};
use crate::ops::upcast;
use crate::{LossError, Result};

/// Settings of [`SwavLoss`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct SwavLossConfig {
    /// τ, the temperature of the predicted assignments (paper: 0.1).
    pub temperature: f64,
    /// ε, the entropy weight of the Sinkhorn-Knopp codes (paper: 0.05).
    pub epsilon: f64,
    /// Sinkhorn-Knopp iterations (paper: 3).
    pub sinkhorn_iterations: i64,
}

impl Default for SwavLossConfig {
    fn default() -> Self {
        // Caron et al. 2020, Sec. 4 / Appendix A: τ 0.1, ε 0.05, 3 iterations.
        Self { temperature: 0.1, epsilon: 0.05, sinkhorn_iterations: 3 }
    }
}

impl SwavLossConfig {
    /// Validates the config and builds the loss.
    ///
    /// # Errors
    /// [`LossError::InvalidConfig`] naming `temperature` or `epsilon` (must be > 0) or
    /// `sinkhorn_iterations` (≥ 1).
    pub fn build(self) -> Result<SwavLoss> {
        check_temperature(self.temperature)?;
        let bad =
            |field, value: String, reason| Err(LossError::InvalidConfig { field, value, reason });
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return bad("epsilon", self.epsilon.to_string(), "must be a finite number > 0");
        }
        if self.sinkhorn_iterations < 1 {
            return bad("sinkhorn_iterations", self.sinkhorn_iterations.to_string(), "must be ≥ 1");
        }
        Ok(SwavLoss { cfg: self })
    }
}

/// Codes Q for a batch of prototype scores by the Sinkhorn-Knopp algorithm: an assignment of
/// the B samples to the K prototypes that is as sharp as ε allows and uses every prototype
/// equally often.
///
/// Paper: Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
/// Assignments", NeurIPS 2020, <https://arxiv.org/abs/2006.09882>, Eq. (3)–(5) and its
/// `distributed_sinkhorn`; Cuturi 2013 for the algorithm.
///
/// ```text
/// Q ∝ exp(scores / ε)ᵀ  (K × B, normalised to sum 1)
/// repeat: rows ← rows / (K · row sums);  columns ← columns / (B · column sums)
/// return B · Qᵀ    (each sample's code sums to 1; each prototype's mass → B / K)
/// ```
///
/// Runs without gradients (the codes are targets); the exponent is shifted by the largest
/// score first, which the normalisation cancels.
///
/// # Shapes
/// `scores`: `[B, K]` → `[B, K]`, rows summing to 1.
pub fn sinkhorn(scores: &Tensor, epsilon: f64, iterations: i64) -> Tensor {
    tch::no_grad(|| {
        let s = upcast(&scores.detach());
        let (b, k) = (s.size()[0] as f64, s.size()[1] as f64);
        let mut q = ((&s - s.max()) / epsilon).exp().tr(); // [K, B]
        q /= q.sum(q.kind());
        for _ in 0..iterations {
            q /= q.sum_dim_intlist([1i64].as_slice(), true, q.kind()) * k; // rows: mass 1/K each
            q /= q.sum_dim_intlist([0i64].as_slice(), true, q.kind()) * b; // columns: 1/B each
        }
        (q * b).tr().contiguous() // [B, K]
    })
}

/// SwAV's swapped prediction: the code of one crop is predicted from every other crop.
///
/// Paper: Caron et al., NeurIPS 2020, <https://arxiv.org/abs/2006.09882>, Eq. (1)–(2).
///
/// ```text
/// scores of crop v: sᵥ = ẑᵥ Ĉᵀ ∈ [B, K]  (unit features against unit prototypes)
/// q_s = sinkhorn(s_s; ε) for the assignment crops s (the first `n_assign`, the global ones)
/// pᵥ = softmax(sᵥ / τ)
/// L = 1/|S| Σ_{s∈S} 1/(V − 1) Σ_{v≠s} 1/B Σ_b −Σ_k q_s[b, k] log pᵥ[b, k]
/// ```
///
/// Prototype normalisation and the queue of the paper's small-batch variant are the caller's:
/// pass the cosine scores of every crop, global crops first. Codes carry no gradient.
/// f16 / bf16 scores are computed in f32.
///
/// # Shapes
/// `scores`: V ≥ 2 tensors `[B, K]` (any number of crops) → 0-dim mean.
///
/// # Panics
/// When fewer than 2 crops are given, `n_assign` is 0 or exceeds V, or the crops' shapes differ.
///
/// # Example
/// ```
/// use ssl_loss::SwavLossConfig;
/// let same = tch::Tensor::zeros([4, 6], (tch::Kind::Float, tch::Device::Cpu)); // equal scores
/// let swav = SwavLossConfig::default().build()?;
/// let l = swav.forward(&[same.shallow_clone(), same.shallow_clone(), same], 2).double_value(&[]);
/// assert!((l - 6f64.ln()).abs() < 1e-5); // uniform codes against uniform predictions: ln K
/// # Ok::<(), ssl_loss::LossError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SwavLoss {
    cfg: SwavLossConfig,
}

impl SwavLoss {
    /// The swapped-prediction loss over all crops, codes from the first `n_assign` crops.
    ///
    /// # Panics
    /// As documented on [`SwavLoss`].
    pub fn forward(&self, scores: &[Tensor], n_assign: usize) -> Tensor {
        self.f_forward(scores, n_assign).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`SwavLoss::forward`], returning the shape error.
    ///
    /// # Errors
    /// [`crate::LossError::Shape`] in the cases listed under `# Panics` on [`SwavLoss`].
    pub fn f_forward(&self, scores: &[Tensor], n_assign: usize) -> Result<Tensor> {
        check_crops(scores)?;
        let v = scores.len();
        ensure((1..=v).contains(&n_assign), "SwavLoss", || {
            format!("n_assign = {n_assign} must be in 1..={v} (the number of crops)")
        })?;
        let c = self.cfg;
        let codes: Vec<Tensor> = (scores.iter().take(n_assign))
            .map(|crop| sinkhorn(crop, c.epsilon, c.sinkhorn_iterations))
            .collect(); // [B, K] each
        self.f_forward_with_codes(scores, &codes)
    }

    /// The swapped prediction with the codes given: `codes[s]` (`[B, K]`, rows summing to 1, no
    /// gradient) is the target of crop `s` for every other crop. SwAV's small-batch variant
    /// computes them by [`sinkhorn`] over a queue of past features and the batch, keeping the
    /// batch's rows.
    ///
    /// # Errors
    /// [`crate::LossError::Shape`] as [`SwavLoss::f_forward`], or when there are no codes,
    /// more codes than crops, or a code's shape differs from the scores'.
    pub fn f_forward_with_codes(&self, scores: &[Tensor], codes: &[Tensor]) -> Result<Tensor> {
        check_crops(scores)?;
        let (v, n_assign, shape) = (scores.len(), codes.len(), scores[0].size());
        ensure((1..=v).contains(&n_assign), "SwavLoss", || {
            format!("{n_assign} codes; need 1..={v} (one per assignment crop)")
        })?;
        for (i, q) in codes.iter().enumerate() {
            ensure(q.size() == shape, "SwavLoss", || {
                format!("code {i} is {:?}, the scores are {shape:?}", q.size())
            })?;
        }
        let kind = upcast(&scores[0]).kind();
        let log_p: Vec<Tensor> = scores
            .iter()
            .map(|s| (s.to_kind(kind) / self.cfg.temperature).log_softmax(1, kind))
            .collect();
        let mut total = Tensor::zeros([], (kind, scores[0].device()));
        for (s, q) in codes.iter().enumerate() {
            let q = q.detach().to_kind(kind);
            for (_, lp) in log_p.iter().enumerate().filter(|(other, _)| *other != s) {
                let ce = -(&q * lp).sum_dim_intlist([1i64].as_slice(), false, kind).mean(kind);
                total += ce / (v - 1) as f64;
            }
        }
        Ok(total / n_assign as f64)
    }
}

/// Checks that there are ≥ 2 crops of one `[B, K]` shape.
fn check_crops(scores: &[Tensor]) -> Result<()> {
    let v = scores.len();
    ensure(v >= 2, "SwavLoss", || format!("needs ≥ 2 crops, got {v}"))?;
    let shape = scores[0].size();
    for (i, s) in scores.iter().enumerate() {
        ensure(s.size().len() == 2 && s.size() == shape, "SwavLoss", || {
            format!("crop {i} has scores {:?}, crop 0 has {shape:?}; all must be [B, K]", s.size())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn sinkhorn_codes_are_distributions_that_share_the_prototypes_equally() {
        // Fixed scores in [−1, 1] (no random draw: how fast Sinkhorn-Knopp converges at ε =
        // 0.05 depends on the matrix, and some random draws need thousands of iterations).
        let v: Vec<f64> =
            (0..48).map(|i| f64::from((i * 7 + i / 4 * 3) % 11) / 5.0 - 1.0).collect();
        let scores = Tensor::from_slice(&v).view([12, 4]);
        let q = sinkhorn(&scores, 0.05, 200);
        let per_sample = q.sum_dim_intlist([1i64].as_slice(), false, Kind::Double);
        let per_prototype = q.sum_dim_intlist([0i64].as_slice(), false, Kind::Double);
        let ones = Tensor::ones([12], (Kind::Double, Device::Cpu));
        assert!(per_sample.allclose(&ones, 1e-12, 1e-12, false));
        // Equipartition: every prototype gets B / K = 3 samples' worth of mass.
        let threes = Tensor::full([4], 3.0, (Kind::Double, Device::Cpu));
        assert!(per_prototype.allclose(&threes, 1e-6, 1e-6, false), "{per_prototype:?}");
    }

    #[test]
    fn a_small_epsilon_gives_one_hot_codes_of_a_clear_assignment() {
        // Sample b prefers prototype b (cos 1 against 0): with ε = 0.01 the code is one-hot.
        let scores = Tensor::eye(3, (Kind::Double, Device::Cpu));
        let q = sinkhorn(&scores, 0.01, 3);
        assert!(q.allclose(&scores, 1e-9, 1e-9, false), "{q:?}");
    }

    #[test]
    fn bad_fields_and_crop_counts_are_caught() {
        let err = SwavLossConfig { epsilon: 0.0, ..Default::default() }.build().unwrap_err();
        assert!(err.to_string().contains("epsilon"), "{err}");
        let cfg = SwavLossConfig { sinkhorn_iterations: 0, ..Default::default() };
        assert!(cfg.build().unwrap_err().to_string().contains("sinkhorn_iterations"));
        let swav = SwavLossConfig::default().build().unwrap();
        let one = [Tensor::zeros([4, 6], (Kind::Float, Device::Cpu))];
        let err = swav.f_forward(&one, 1).unwrap_err().to_string();
        assert!(err.contains("needs ≥ 2 crops, got 1"), "{err}");
        let two = [one[0].shallow_clone(), one[0].shallow_clone()];
        let err = swav.f_forward(&two, 3).unwrap_err().to_string();
        assert!(err.contains("n_assign = 3 must be in 1..=2"), "{err}");
    }

    #[test]
    fn sinkhorn_runs_in_f32_on_bf16_scores() {
        // Scores as a bf16 backbone's head would give them: the codes come back in f32 and
        // equal those of the same (bf16-representable) scores given in f32.
        let v: Vec<f32> = (0..24).map(|i| ((i * 5 % 9) as f32) / 4.0 - 1.0).collect();
        let f32_scores = Tensor::from_slice(&v).view([6, 4]);
        let bf16_scores = f32_scores.to_kind(Kind::BFloat16);
        let q = sinkhorn(&bf16_scores, 0.05, 3);
        assert_eq!(q.kind(), Kind::Float);
        assert!(q.allclose(&sinkhorn(&f32_scores, 0.05, 3), 1e-6, 1e-6, false));
        let rows = q.sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
        assert!(rows.allclose(&Tensor::ones([6], (Kind::Float, Device::Cpu)), 1e-5, 1e-5, false));
    }

    #[test]
    fn given_codes_are_the_targets_of_every_other_crop() {
        // Two crops, one code (one-hot on prototype 0 for both samples) and uniform scores
        // of crop 1: the loss is −log softmax(0)[0] = ln K, whatever crop 0 scores.
        let swav = SwavLossConfig::default().build().unwrap();
        let s0 = Tensor::from_slice(&[1.0f64, -1.0, 0.5, 0.2]).view([2, 2]);
        let s1 = Tensor::zeros([2, 2], (Kind::Double, Device::Cpu));
        let q = Tensor::from_slice(&[1.0f64, 0.0, 1.0, 0.0]).view([2, 2]);
        let l = swav.f_forward_with_codes(&[s0.shallow_clone(), s1], &[q]).unwrap();
        assert!((l.double_value(&[]) - 2f64.ln()).abs() < 1e-12);
        // And the codes forward computes are sinkhorn's.
        let c = SwavLossConfig::default();
        let both = [s0.shallow_clone(), s0.flip([1i64].as_slice())];
        let codes: Vec<Tensor> = both.iter().map(|s| sinkhorn(s, c.epsilon, 3)).collect();
        let a = swav.forward(&both, 2).double_value(&[]);
        let b = swav.f_forward_with_codes(&both, &codes).unwrap().double_value(&[]);
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        let bad =
            swav.f_forward_with_codes(&both, &[Tensor::zeros([2, 3], (Kind::Double, Device::Cpu))]);
        assert!(bad.unwrap_err().to_string().contains("code 0 is [2, 3]"));
    }

    #[test]
    #[should_panic(expected = "crop 1 has scores [4, 5], crop 0 has [4, 6]")]
    fn crops_of_different_shapes_panic_naming_both() {
        let a = Tensor::zeros([4, 6], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([4, 5], (Kind::Float, Device::Cpu));
        let _ = SwavLossConfig::default().build().unwrap().forward(&[a, b], 1);
    }
}
