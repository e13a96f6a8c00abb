//! Per-channel normalisation: `(x − mean) / std`.

use tch::Tensor;

use crate::aug::check_batch;
use crate::{AugError, AugRng, BatchAug, BatchParams, Result};

/// Settings of [`Normalize`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct NormalizeConfig {
    /// Per-channel mean (one value broadcasts to every channel).
    pub mean: Vec<f64>,
    /// Per-channel standard deviation, each > 0.
    pub std: Vec<f64>,
}

impl Default for NormalizeConfig {
    /// The ImageNet statistics every torchvision recipe uses.
    fn default() -> Self {
        Self { mean: vec![0.485, 0.456, 0.406], std: vec![0.229, 0.224, 0.225] }
    }
}

impl NormalizeConfig {
    /// Validates the config and builds the op.
    ///
    /// # Errors
    /// [`AugError::InvalidConfig`] when `mean` and `std` differ in length or are empty, or a
    /// `std` entry is not a finite number > 0.
    pub fn build(self) -> Result<Normalize> {
        let bad = |field, value: String, reason| {
            Err(AugError::InvalidConfig { op: "normalize", field, value, reason })
        };
        if self.mean.is_empty() || self.mean.len() != self.std.len() {
            return bad("std", format!("{:?}", self.std), "needs one entry per mean entry (≥ 1)");
        }
        if !self.std.iter().all(|s| s.is_finite() && *s > 0.0) {
            return bad("std", format!("{:?}", self.std), "every entry must be finite and > 0");
        }
        Ok(Normalize { cfg: self })
    }
}

/// `y[n, c] = (x[n, c] − mean[c]) / std[c]`, torchvision's `Normalize`; deterministic.
///
/// # Shapes
/// `x`: float `[N, C, H, W]` with C equal to the config's length (or a length of 1) → same.
///
/// # Panics
/// When x is not a float batch or its channels do not match the config.
#[derive(Debug, Clone)]
pub struct Normalize {
    cfg: NormalizeConfig,
}

/// The batch size is the only parameter of a deterministic op.
impl BatchParams for usize {
    fn len(&self) -> usize {
        *self
    }

    fn rows(&self, _start: usize, len: usize) -> Self {
        len
    }
}

impl BatchAug for Normalize {
    type Params = usize;

    /// The batch size: normalisation draws nothing.
    fn sample(&self, size: &[i64], _rng: &mut AugRng) -> usize {
        size[0] as usize
    }

    fn apply(&self, x: &Tensor, n: &usize) -> Tensor {
        self.check(x, *n);
        (x - column(&self.cfg.mean, x)) / column(&self.cfg.std, x)
    }

    fn apply_owned(&self, mut x: Tensor, n: &usize) -> Tensor {
        self.check(&x, *n);
        x -= column(&self.cfg.mean, &x);
        x /= column(&self.cfg.std, &x);
        x
    }
}

impl Normalize {
    /// Checks the batch's shape and dtype against the op's channels.
    fn check(&self, x: &Tensor, n: usize) {
        check_batch("Normalize", x, n);
        let (c, len) = (x.size()[1], self.cfg.mean.len() as i64);
        assert!(
            x.is_floating_point() && (len == 1 || len == c),
            "Normalize: x {:?} ({:?}) must be float with {len} channels",
            x.size(),
            x.kind()
        );
    }
}

/// Per-channel values as `[1, C, 1, 1]` (or `[1, 1, 1, 1]`) of x's device and dtype.
fn column(v: &[f64], x: &Tensor) -> Tensor {
    Tensor::from_slice(v).view([1, -1, 1, 1]).to_device(x.device()).to_kind(x.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aug_rng;
    use tch::{Device, Kind};

    #[test]
    fn hand_computed_values_and_the_inverse() {
        let op = NormalizeConfig { mean: vec![0.5, 0.25], std: vec![0.5, 0.25] }.build().unwrap();
        let x = Tensor::from_slice(&[1.0f64, 0.0, 0.5, 0.75]).view([1, 2, 1, 2]);
        let n = op.sample(&x.size(), &mut aug_rng(0, &[]));
        let y = Vec::<f64>::try_from(op.apply(&x, &n).flatten(0, -1)).unwrap();
        assert_eq!(y, vec![1.0, -1.0, 1.0, 2.0]);
        let x = Tensor::rand([3, 3, 4, 4], (Kind::Double, Device::Cpu));
        let op = NormalizeConfig::default().build().unwrap();
        let y = op.apply(&x, &3);
        let std = Tensor::from_slice(&[0.229f64, 0.224, 0.225]).view([1, 3, 1, 1]);
        let mean = Tensor::from_slice(&[0.485f64, 0.456, 0.406]).view([1, 3, 1, 1]);
        assert!((y * std + mean).allclose(&x, 1e-12, 1e-12, false));
    }

    #[test]
    fn bad_statistics_are_rejected_naming_the_field() {
        let err = NormalizeConfig { mean: vec![0.5], std: vec![0.0] }.build().unwrap_err();
        assert!(err.to_string().contains("normalize.std"), "{err}");
        let err = NormalizeConfig { mean: vec![0.5, 0.5], std: vec![1.0] }.build().unwrap_err();
        assert!(err.to_string().contains("normalize.std"), "{err}");
    }

    #[test]
    #[should_panic(expected = "must be float with 3 channels")]
    fn a_channel_mismatch_panics_naming_the_shape() {
        let op = NormalizeConfig::default().build().unwrap();
        let _ = op.apply(&Tensor::zeros([1, 2, 2, 2], (Kind::Float, Device::Cpu)), &1);
    }
}
