//! Weighted k-nearest-neighbour classification of features (Wu et al. 2018).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Settings of [`knn_top1`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnnConfig {
    /// Neighbours that vote, k (200 in Wu et al.).
    pub k: i64,
    /// Temperature T of the vote weights exp(s / T) (0.1 in Wu et al.).
    pub temperature: f64,
}

impl Default for KnnConfig {
    fn default() -> Self {
        Self { k: 200, temperature: 0.1 }
    }
}

/// Top-1 accuracy of a kNN classifier with cosine similarity and temperature-weighted votes.
///
/// Paper: Wu, Xiong, Yu, Lin, "Unsupervised Feature Learning via Non-Parametric Instance
/// Discrimination", CVPR 2018, <https://arxiv.org/abs/1805.01978>, Sec. 3.4.
///
/// ```text
/// sᵢ = cos(f̂, fᵢ) for the k most similar memory features fᵢ
/// score(c) = Σ_{i: yᵢ = c} exp(sᵢ / T)        ŷ = argmax_c score(c)
/// ```
///
/// # Shapes
/// `bank`: `[M, F]`, `bank_labels`: `[M]` int64 in `0..classes`, `query`: `[Q, F]`,
/// `query_labels`: `[Q]` → accuracy in `[0, 1]`.
///
/// # Panics
/// When shapes disagree or `k` exceeds M.
pub fn knn_top1(
    bank: &Tensor,
    bank_labels: &Tensor,
    query: &Tensor,
    query_labels: &Tensor,
    classes: i64,
    cfg: KnnConfig,
) -> f64 {
    let (m, q) = (bank.size()[0], query.size()[0]);
    assert!(
        bank_labels.size() == [m]
            && query_labels.size() == [q]
            && bank.size()[1] == query.size()[1],
        "knn_top1: bank {:?} / labels {:?} and query {:?} / labels {:?} disagree",
        bank.size(),
        bank_labels.size(),
        query.size(),
        query_labels.size()
    );
    assert!(cfg.k <= m, "knn_top1: k = {} exceeds the {m} memory features", cfg.k);
    let bank = ssl_loss::l2_normalize(&bank.to_kind(Kind::Float), 1e-12); // [M, F]
    let query = ssl_loss::l2_normalize(&query.to_kind(Kind::Float), 1e-12); // [Q, F]
    let mut correct = 0i64;
    tch::no_grad(|| {
        for start in (0..q).step_by(512) {
            let len = 512.min(q - start);
            let sim = query.narrow(0, start, len).matmul(&bank.tr()); // [B, M]
            let (top_sim, top_idx) = sim.topk(cfg.k, 1, true, true); // [B, k] each
            let votes = bank_labels.index_select(0, &top_idx.flatten(0, -1)).view([len, cfg.k]);
            let weights = (top_sim / cfg.temperature).exp(); // [B, k]
            let scores = Tensor::zeros([len, classes], (Kind::Float, bank.device()))
                .scatter_add(1, &votes, &weights); // [B, classes]
            let pred = scores.argmax(1, false); // [B]
            let truth = query_labels.narrow(0, start, len);
            correct += pred.eq_tensor(&truth).sum(Kind::Int64).int64_value(&[]);
        }
    });
    correct as f64 / q as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &[i64]) -> Tensor {
        Tensor::from_slice(v)
    }

    #[test]
    fn weighted_votes_decide_against_the_majority_when_neighbours_are_closer() {
        // Memory: one class-0 point at angle 0°, two class-1 points at ±60°.
        // Query at 10°: cos to class 0 = cos 10° = 0.985, to class 1 = cos 50°, cos 70°.
        // T = 0.1: e^{9.85} = 18,950 beats e^{6.43} + e^{3.42} = 620 + 31: class 0.
        // T = 10: e^{0.0985} = 1.10 loses to e^{0.0643} + e^{0.0342} = 2.10: class 1.
        let deg = |d: f64| [d.to_radians().cos() as f32, d.to_radians().sin() as f32];
        let bank: Vec<f32> = [deg(0.0), deg(60.0), deg(-60.0)].concat();
        let bank = Tensor::from_slice(&bank).view([3, 2]);
        let query = Tensor::from_slice(&deg(10.0)).view([1, 2]);
        let bl = labels(&[0, 1, 1]);
        let sharp = KnnConfig { k: 3, temperature: 0.1 };
        let flat = KnnConfig { k: 3, temperature: 10.0 };
        assert_eq!(knn_top1(&bank, &bl, &query, &labels(&[0]), 2, sharp), 1.0);
        assert_eq!(knn_top1(&bank, &bl, &query, &labels(&[1]), 2, flat), 1.0);
    }

    #[test]
    fn k_one_on_the_memory_itself_is_perfect_and_counts_errors() {
        let bank = Tensor::eye(4, (Kind::Float, tch::Device::Cpu)) * 3.0;
        let bl = labels(&[0, 1, 2, 1]);
        let one = KnnConfig { k: 1, temperature: 0.1 };
        assert_eq!(knn_top1(&bank, &bl, &bank, &bl, 3, one), 1.0);
        assert_eq!(knn_top1(&bank, &bl, &bank, &labels(&[0, 1, 2, 2]), 3, one), 0.75);
    }
}
