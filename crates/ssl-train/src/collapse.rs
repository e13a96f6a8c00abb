//! Collapse monitors of a batch of embeddings: the per-dimension standard deviation of the
//! unit embeddings and their effective rank (RankMe).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Below this fraction of the healthy 1/√d, the standard deviation signals a collapse.
const MIN_STD_FRACTION: f64 = 0.1;
/// Below this many effective dimensions, RankMe signals a collapse.
const MIN_RANK: f64 = 2.0;
/// Below this many, a partial collapse: every healthy held-out run of docs/results.md kept
/// RankMe ≥ 6.6 of 128, while the two that scored near or below the random-init floor (SwAV's
/// first recipe, SimSiam with LARS) ended at 2.8 and 2.3, above [`MIN_RANK`].
const PARTIAL_RANK: f64 = 4.0;

/// What the collapse monitors measured on one epoch's last embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CollapseStats {
    /// Mean over dimensions of the standard deviation over samples of the L2-normalised
    /// embeddings: about 1/√d when they spread over the sphere, 0 when they all coincide
    /// (Chen & He 2021, Sec. 4.1 and Fig. 2).
    pub embedding_std: f64,
    /// The effective rank exp(−Σₖ pₖ ln pₖ), pₖ = σₖ / Σσ + ε, of the embedding matrix's singular
    /// values (Garrido et al., "RankMe", ICML 2023, Eq. 1): between 1 and d.
    pub rankme: f64,
    /// d, the embeddings' dimension.
    pub dim: i64,
    /// How many embeddings were measured.
    pub samples: i64,
}

impl CollapseStats {
    /// Measures `z` (`[N, d]`, N ≥ 2; normalised here).
    ///
    /// # Panics
    /// When `z` is not `[N, d]` with N ≥ 2.
    pub fn measure(z: &Tensor) -> Self {
        let size = z.size();
        assert!(
            size.len() == 2 && size[0] >= 2,
            "collapse monitor: embeddings {size:?}, want [N ≥ 2, d]"
        );
        tch::no_grad(|| {
            let z = z.to_kind(Kind::Double);
            let norm = z.norm_scalaropt_dim(2, [1i64].as_slice(), true).clamp_min(1e-12);
            let unit = &z / norm; // [N, d]
            let std = unit.std_dim([0i64].as_slice(), false, false).mean(Kind::Double); // [d] → 0-dim
            let (_, s, _) = unit.svd(true, false); // s: [min(N, d)]
            let p = &s / s.sum(Kind::Double).clamp_min(1e-12) + 1e-7;
            let entropy = -(&p * p.log()).sum(Kind::Double);
            Self {
                embedding_std: std.double_value(&[]),
                rankme: entropy.exp().double_value(&[]),
                dim: size[1],
                samples: size[0],
            }
        })
    }

    /// A warning when the embeddings have collapsed (a standard deviation below a tenth of the
    /// healthy 1/√d, or fewer than two effective dimensions) or partly collapsed (fewer than
    /// four effective dimensions, when d is at least 8).
    pub fn warning(&self) -> Option<String> {
        let healthy = 1.0 / (self.dim as f64).sqrt();
        let stats = format!(
            "per-dimension std {:.4} (healthy ≈ 1/√{} = {:.4}), RankMe {:.2} of {} dimensions",
            self.embedding_std, self.dim, healthy, self.rankme, self.dim
        );
        if self.embedding_std < MIN_STD_FRACTION * healthy || self.rankme < MIN_RANK {
            Some(format!("the embeddings have collapsed: {stats}"))
        } else if self.dim >= 8 && self.rankme < PARTIAL_RANK {
            Some(format!(
                "the embeddings have partly collapsed onto fewer than {PARTIAL_RANK} directions: \
                 {stats}"
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn constant_embeddings_collapse_and_raise_the_warning() {
        let z = Tensor::ones([64, 16], (Kind::Float, Device::Cpu)) * 3.0;
        let s = CollapseStats::measure(&z);
        assert!(s.embedding_std.abs() < 1e-12, "{s:?}");
        assert!((s.rankme - 1.0).abs() < 1e-3, "one direction: RankMe 1, {s:?}");
        let w = s.warning().expect("a collapse warning");
        assert!(w.contains("collapsed") && w.contains("RankMe"), "{w}");
    }

    #[test]
    fn orthonormal_embeddings_have_full_rank_and_the_healthy_std() {
        // ±e₁ … ±e_d: every direction once each way. Each dimension holds the values ±1 twice
        // and 0 otherwise over N = 2d samples: mean 0, variance 2/(2d) = 1/d, std 1/√d; all
        // singular values equal √2, so RankMe = d.
        let d = 8;
        let e = Tensor::eye(d, (Kind::Double, Device::Cpu));
        let z = Tensor::cat(&[&e, &(-&e)], 0); // [2d, d]
        let s = CollapseStats::measure(&z);
        assert!((s.embedding_std - 1.0 / (d as f64).sqrt()).abs() < 1e-12, "{s:?}");
        assert!((s.rankme - d as f64).abs() < 1e-3, "{s:?}");
        assert_eq!(s.warning(), None);
    }

    #[test]
    fn two_directions_give_a_rank_of_two() {
        // Half the rows e₁, half e₂ (times random positive scales, removed by the normalisation).
        let mut rows = Vec::new();
        for i in 0..20 {
            let scale = 1.0 + i as f64;
            rows.push(if i % 2 == 0 { [scale, 0.0, 0.0, 0.0] } else { [0.0, scale, 0.0, 0.0] });
        }
        let z = Tensor::from_slice(rows.as_flattened()).view([20, 4]);
        let s = CollapseStats::measure(&z);
        assert!((s.rankme - 2.0).abs() < 1e-3, "{s:?}");
    }

    #[test]
    fn three_of_sixteen_directions_are_a_partial_collapse_and_six_are_not() {
        // Rows ±e₁ … ±e_k in d = 16: the mean std √k / 16 stays above a tenth of the healthy
        // 1/4, and the k singular values are equal, so RankMe = k exactly.
        let with_directions = |k: i64| {
            let e = Tensor::eye(16, (Kind::Double, Device::Cpu)).narrow(0, 0, k); // [k, 16]
            CollapseStats::measure(&Tensor::cat(&[&e, &(-&e)], 0))
        };
        let three = with_directions(3);
        assert!((three.rankme - 3.0).abs() < 1e-3, "{three:?}");
        let w = three.warning().expect("a partial-collapse warning");
        assert!(w.contains("partly collapsed") && w.contains("RankMe 3.00"), "{w}");
        let six = with_directions(6);
        assert!((six.rankme - 6.0).abs() < 1e-3, "{six:?}");
        assert_eq!(six.warning(), None, "{six:?}");
    }
}
