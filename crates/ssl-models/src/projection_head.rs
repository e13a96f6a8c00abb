//! MLP projection and prediction heads (SimCLR, MoCo v2, BYOL).

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::init::batch_norm1d;
use crate::{ModelError, Result};

/// Settings of [`ProjectionHead`]: `num_layers` linear layers, each but the last followed by
/// (optional) BatchNorm and ReLU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct ProjectionHeadConfig {
    /// Width of the backbone features h.
    pub input_dim: i64,
    /// Width of every hidden layer.
    pub hidden_dim: i64,
    /// Width of the projection z.
    pub output_dim: i64,
    /// Linear layers in total (≥ 1).
    pub num_layers: i64,
    /// BatchNorm after each hidden linear layer.
    pub batch_norm: bool,
}

impl ProjectionHeadConfig {
    /// SimCLR: "a MLP with one hidden layer to obtain zᵢ = g(hᵢ) = W⁽²⁾σ(W⁽¹⁾hᵢ)" (Chen et al.
    /// 2020, Sec. 2.1), with BatchNorm in the hidden layer as in the authors' code; the hidden
    /// layer is as wide as h and z has 128 dimensions (Appendix B.9).
    pub fn simclr(input_dim: i64) -> Self {
        Self { input_dim, hidden_dim: input_dim, output_dim: 128, num_layers: 2, batch_norm: true }
    }

    /// MoCo v2: "a 2-layer MLP head (hidden layer 2048-d, with ReLU)" (Chen et al. 2020b, Sec. 2),
    /// with a 128-d output and no BatchNorm.
    pub fn moco_v2(input_dim: i64) -> Self {
        Self { input_dim, hidden_dim: 2048, output_dim: 128, num_layers: 2, batch_norm: false }
    }

    /// BYOL: "a linear layer with output size 4096 followed by batch normalization, rectified
    /// linear units, and a final linear layer with output dimension 256" (Grill et al. 2020,
    /// Sec. 3.3); the predictor has the same architecture.
    pub fn byol(input_dim: i64) -> Self {
        Self { input_dim, hidden_dim: 4096, output_dim: 256, num_layers: 2, batch_norm: true }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the first field that is not ≥ 1.
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("input_dim", self.input_dim),
            ("hidden_dim", self.hidden_dim),
            ("output_dim", self.output_dim),
            ("num_layers", self.num_layers),
        ];
        for (field, value) in fields {
            if value < 1 {
                return Err(ModelError::InvalidConfig {
                    model: "projection_head",
                    field,
                    value: value.to_string(),
                    reason: "must be ≥ 1",
                });
            }
        }
        Ok(())
    }
}

/// An MLP head `z = W_L σ(BN(… σ(BN(W_1 h))))`.
///
/// Variables follow an `nn.Sequential` of `[Linear, BatchNorm1d, ReLU, …, Linear]` as in lightly's
/// `ProjectionHead`: `layers.0` is the first linear layer, `layers.1` its BatchNorm, and so on.
/// A linear layer followed by BatchNorm has no bias, since BatchNorm's shift replaces it.
///
/// # Shapes
/// `h`: `[N, input_dim]` → `[N, output_dim]`.
#[derive(Debug)]
pub struct ProjectionHead {
    hidden: Vec<(nn::Linear, Option<nn::BatchNorm>)>,
    last: nn::Linear,
}

impl ProjectionHead {
    /// Creates the variables under `p`.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] when `cfg` fails [`ProjectionHeadConfig::validate`].
    pub fn new(p: &nn::Path, cfg: &ProjectionHeadConfig) -> Result<Self> {
        cfg.validate()?;
        let layers = p / "layers";
        let per_block = if cfg.batch_norm { 3 } else { 2 }; // Linear, [BN,] ReLU
        let mut hidden = Vec::new();
        let mut c_in = cfg.input_dim;
        for i in 0..cfg.num_layers - 1 {
            let at = i * per_block;
            let lin_cfg = nn::LinearConfig { bias: !cfg.batch_norm, ..Default::default() };
            let lin = nn::linear(&layers / at, c_in, cfg.hidden_dim, lin_cfg);
            let bn = cfg.batch_norm.then(|| batch_norm1d(&layers / (at + 1), cfg.hidden_dim));
            hidden.push((lin, bn));
            c_in = cfg.hidden_dim;
        }
        let at = (cfg.num_layers - 1) * per_block;
        let last = nn::linear(&layers / at, c_in, cfg.output_dim, Default::default());
        Ok(Self { hidden, last })
    }
}

impl ModuleT for ProjectionHead {
    fn forward_t(&self, h: &Tensor, train: bool) -> Tensor {
        let mut y = h.shallow_clone();
        for (lin, bn) in &self.hidden {
            y = y.apply(lin); // [N, hidden_dim]
            if let Some(bn) = bn {
                y = y.apply_t(bn, train);
            }
            y = y.relu();
        }
        y.apply(&self.last) // [N, output_dim]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn a_one_layer_head_is_a_plain_linear_map() {
        let _rng = ssl_testutil::seed_global_rng(1); // draws: weights, inputs
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ProjectionHeadConfig {
            input_dim: 3,
            hidden_dim: 9,
            output_dim: 2,
            num_layers: 1,
            batch_norm: true,
        };
        let head = ProjectionHead::new(&vs.root(), &cfg).unwrap();
        let h = Tensor::from_slice(&[1.0f32, 2.0, 3.0]).view([1, 3]);
        let vars = vs.variables();
        let (w, b) = (&vars["layers.0.weight"], &vars["layers.0.bias"]);
        let want = h.matmul(&w.tr()) + b;
        assert!(head.forward_t(&h, false).allclose(&want, 1e-6, 1e-6, false));
        assert_eq!(head.forward_t(&h, false).kind(), Kind::Float);
    }

    #[test]
    fn zero_sizes_are_rejected_naming_the_field() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ProjectionHeadConfig { output_dim: 0, ..ProjectionHeadConfig::simclr(8) };
        let err = ProjectionHead::new(&vs.root(), &cfg).unwrap_err().to_string();
        assert!(err.contains("projection_head.output_dim = 0"), "{err}");
    }
}
