//! The mutual-information lower bound that an InfoNCE loss value certifies.

/// I(v₁; v₂) ≥ ln(K + 1) − L, in nats, for an InfoNCE-family loss L over K negatives and one
/// positive per anchor (for NT-Xent, K = 2N − 2).
///
/// Paper: van den Oord, Li, Vinyals, "Representation Learning with Contrastive Predictive
/// Coding", 2018, <https://arxiv.org/abs/1807.03748>, Sec. 2.3: I(x; c) ≥ log(N) − L_N with
/// N = K + 1 candidates.
///
/// ```text
/// Î = ln(K + 1) − L
/// ```
///
/// The bound can never exceed ln(K + 1), however good the encoder: it is a logging aid, not an
/// estimate of the true mutual information.
///
/// K is the number of negatives each anchor was actually contrasted with in the step that gave
/// L (for a MoCo queue, the rows passed as negatives that step, not a capacity configured
/// elsewhere): a larger K than was used overstates the bound by ln((K + 1)/(K_used + 1)).
///
/// # Example
/// ```
/// // A loss at chance level, ln(K + 1), certifies nothing.
/// assert!(ssl_loss::mi_lower_bound(1023f64.ln(), 1022).abs() < 1e-12);
/// // NT-Xent at 3.3 nats with batch 512 (K = 1022): at least ln(1023) − 3.3 ≈ 3.63 nats.
/// assert!((ssl_loss::mi_lower_bound(3.3, 1022) - 3.6305).abs() < 1e-4);
/// ```
pub fn mi_lower_bound(loss: f64, negatives: u64) -> f64 {
    ((negatives + 1) as f64).ln() - loss
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perfect_loss_certifies_ln_k_plus_1_and_chance_certifies_zero() {
        assert!((mi_lower_bound(0.0, 65_535) - 65_536f64.ln()).abs() < 1e-12);
        assert!(mi_lower_bound(8f64.ln(), 7).abs() < 1e-12);
        // NT-Xent with 2N = 512 views: K = 510 negatives, bound ln(511) − L.
        assert!((mi_lower_bound(2.0, 510) - (511f64.ln() - 2.0)).abs() < 1e-12);
    }
}
