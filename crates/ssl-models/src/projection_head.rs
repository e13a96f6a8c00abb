//! MLP projection and prediction heads (SimCLR, MoCo v1/v2/v3, BYOL, SimSiam): one builder.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::init::{batch_norm1d, batch_norm1d_plain};
use crate::{ModelError, Result};

/// Settings of [`ProjectionHead`]: `num_layers` linear layers, each but the last followed by
/// (optional) BatchNorm and ReLU, the last optionally by a BatchNorm without affine parameters.
/// The presets carry each paper's head; the methods shrink the widths for the CPU.
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
    /// BatchNorm without learnt scale and shift after the output layer (SimSiam's and MoCo
    /// v3's projectors; default false).
    #[cfg_attr(feature = "serde", serde(default))]
    pub output_batch_norm: bool,
}

impl ProjectionHeadConfig {
    /// SimCLR: "a MLP with one hidden layer to obtain zᵢ = g(hᵢ) = W⁽²⁾σ(W⁽¹⁾hᵢ)" (Chen et al.
    /// 2020, Sec. 2.1), with BatchNorm in the hidden layer as in the authors' code; the hidden
    /// layer is as wide as h and z has 128 dimensions (Appendix B.9).
    pub fn simclr(input_dim: i64) -> Self {
        Self::mlp(input_dim, input_dim, 128, 2, true)
    }

    /// MoCo v1: the encoder's "last fully-connected layer (after global average pooling) has a
    /// fixed-dimensional output (128-D)" (He et al. 2020, Sec. 3.3): one linear layer.
    pub fn moco_v1(input_dim: i64) -> Self {
        Self::mlp(input_dim, input_dim, 128, 1, false)
    }

    /// MoCo v2: "a 2-layer MLP head (hidden layer 2048-d, with ReLU)" (Chen et al. 2020b, Sec. 2),
    /// with a 128-d output and no BatchNorm.
    pub fn moco_v2(input_dim: i64) -> Self {
        Self::mlp(input_dim, 2048, 128, 2, false)
    }

    /// BYOL: "a linear layer with output size 4096 followed by batch normalization, rectified
    /// linear units, and a final linear layer with output dimension 256" (Grill et al. 2020,
    /// Sec. 3.3); the predictor has the same architecture.
    pub fn byol(input_dim: i64) -> Self {
        Self::mlp(input_dim, 4096, 256, 2, true)
    }

    /// BYOL's predictor q_θ: "the same architecture" as the projector (Grill et al. 2020,
    /// Sec. 3.3), mapping the 256-d projection to 256-d through 4096 hidden units.
    pub fn byol_predictor() -> Self {
        Self::mlp(256, 4096, 256, 2, true)
    }

    /// SimSiam's projector: "The projection MLP (in f) has BN applied to each fully-connected
    /// (fc) layer, including its output fc. Its output fc has no ReLU. The hidden fc is
    /// 2048-d. This MLP has 3 layers." (Chen & He 2021, Sec. 4.) The output BN has no affine
    /// parameters, as in the authors' code.
    pub fn simsiam(input_dim: i64) -> Self {
        Self { output_batch_norm: true, ..Self::mlp(input_dim, 2048, 2048, 3, true) }
    }

    /// SimSiam's predictor: "BN applied to its hidden fc layers. Its output fc does not have BN
    /// or ReLU. This MLP has 2 layers. The dimension of h's input and output (z and p) is
    /// d = 2048, and h's hidden layer's dimension is 512, making h a bottleneck structure"
    /// (Chen & He 2021, Sec. 4).
    pub fn simsiam_predictor() -> Self {
        Self::mlp(2048, 512, 2048, 2, true)
    }

    /// MoCo v3's projector: "The projection head is a 3-layer MLP … The hidden layers of both
    /// MLPs are 4096-d and are with ReLU; the output layers of both MLPs are 256-d, without
    /// ReLU. … all layers in both MLPs have BN" (Chen, Xie, He 2021, Sec. 4); the authors' code
    /// ends it with a BN without affine parameters.
    pub fn moco_v3(input_dim: i64) -> Self {
        Self { output_batch_norm: true, ..Self::mlp(input_dim, 4096, 256, 3, true) }
    }

    /// MoCo v3's predictor: "the prediction head is a 2-layer MLP", 256 → 4096 → 256 (Chen,
    /// Xie, He 2021, Sec. 4); as in the authors' code, no BN on its output.
    pub fn moco_v3_predictor() -> Self {
        Self::mlp(256, 4096, 256, 2, true)
    }

    /// The one MLP shape every preset is: `num_layers` linear layers, BN on the hidden ones
    /// when `batch_norm`, no output BN.
    pub fn mlp(
        input_dim: i64,
        hidden_dim: i64,
        output_dim: i64,
        num_layers: i64,
        batch_norm: bool,
    ) -> Self {
        Self { input_dim, hidden_dim, output_dim, num_layers, batch_norm, output_batch_norm: false }
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

/// An MLP head `z = [BN₀](W_L σ(BN(… σ(BN(W_1 h)))))`.
///
/// Variables follow an `nn.Sequential` of `[Linear, BatchNorm1d, ReLU, …, Linear, [BatchNorm1d]]`
/// as in lightly's `ProjectionHead`: `layers.0` is the first linear layer, `layers.1` its
/// BatchNorm, and so on. A linear layer followed by BatchNorm has no bias, since BatchNorm's
/// shift replaces it (the output BN₀ has no affine parameters, so there the bias is simply
/// removed by the centring).
///
/// # Shapes
/// `h`: `[N, input_dim]` → `[N, output_dim]`.
#[derive(Debug)]
pub struct ProjectionHead {
    hidden: Vec<(nn::Linear, Option<nn::BatchNorm>)>,
    last: nn::Linear,
    output_bn: Option<nn::BatchNorm>,
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
        let last_cfg = nn::LinearConfig { bias: !cfg.output_batch_norm, ..Default::default() };
        let last = nn::linear(&layers / at, c_in, cfg.output_dim, last_cfg);
        let output_bn =
            cfg.output_batch_norm.then(|| batch_norm1d_plain(&layers / (at + 1), cfg.output_dim));
        Ok(Self { hidden, last, output_bn })
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
        let z = y.apply(&self.last); // [N, output_dim]
        match &self.output_bn {
            Some(bn) => z.apply_t(bn, train),
            None => z,
        }
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
        let cfg = ProjectionHeadConfig::mlp(3, 9, 2, 1, true);
        let head = ProjectionHead::new(&vs.root(), &cfg).unwrap();
        let h = Tensor::from_slice(&[1.0f32, 2.0, 3.0]).view([1, 3]);
        let vars = vs.variables();
        let (w, b) = (&vars["layers.0.weight"], &vars["layers.0.bias"]);
        let want = h.matmul(&w.tr()) + b;
        assert!(head.forward_t(&h, false).allclose(&want, 1e-6, 1e-6, false));
        assert_eq!(head.forward_t(&h, false).kind(), Kind::Float);
    }

    #[test]
    fn the_presets_have_their_papers_shapes_and_variable_names() {
        // (preset, its variables in torch's nn.Sequential naming, its output width)
        let names = |cfg: &ProjectionHeadConfig| {
            let vs = nn::VarStore::new(Device::Cpu);
            let _ = ProjectionHead::new(&vs.root(), cfg).unwrap();
            let mut v: Vec<(String, Vec<i64>)> =
                vs.variables().into_iter().map(|(k, t)| (k, t.size())).collect();
            v.sort();
            v
        };
        let moco_v1 = names(&ProjectionHeadConfig::moco_v1(512));
        assert_eq!(
            moco_v1,
            [("layers.0.bias".into(), vec![128]), ("layers.0.weight".into(), vec![128, 512])]
        );
        // SimSiam: Linear-BN-ReLU, Linear-BN-ReLU, Linear(no bias)-BN(no affine).
        let simsiam = names(&ProjectionHeadConfig {
            hidden_dim: 8,
            output_dim: 6,
            ..ProjectionHeadConfig::simsiam(4)
        });
        let got: Vec<&str> = simsiam.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            got,
            [
                "layers.0.weight",
                "layers.1.bias",
                "layers.1.running_mean",
                "layers.1.running_var",
                "layers.1.weight",
                "layers.3.weight",
                "layers.4.bias",
                "layers.4.running_mean",
                "layers.4.running_var",
                "layers.4.weight",
                "layers.6.weight",
                "layers.7.running_mean",
                "layers.7.running_var",
            ]
        );
        let p = ProjectionHeadConfig::simsiam_predictor();
        assert_eq!((p.input_dim, p.hidden_dim, p.output_dim, p.num_layers), (2048, 512, 2048, 2));
        let v3 = ProjectionHeadConfig::moco_v3(2048);
        assert_eq!(
            (v3.hidden_dim, v3.output_dim, v3.num_layers, v3.output_batch_norm),
            (4096, 256, 3, true)
        );
        let q = ProjectionHeadConfig::moco_v3_predictor();
        assert_eq!(
            (q.input_dim, q.output_dim, q.num_layers, q.output_batch_norm),
            (256, 256, 2, false)
        );
        assert_eq!(ProjectionHeadConfig::byol_predictor(), ProjectionHeadConfig::byol(256));
    }

    #[test]
    fn the_output_batch_norm_standardises_each_dimension_in_training() {
        let _rng = ssl_testutil::seed_global_rng(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ProjectionHeadConfig {
            output_batch_norm: true,
            ..ProjectionHeadConfig::mlp(5, 7, 3, 2, true)
        };
        let head = ProjectionHead::new(&vs.root(), &cfg).unwrap();
        let z = head.forward_t(&Tensor::randn([64, 5], (Kind::Float, Device::Cpu)), true); // [64, 3]
        let mean = z.mean_dim([0i64].as_slice(), false, Kind::Float);
        let var = z.var_dim([0i64].as_slice(), false, false);
        assert!(mean.abs().max().double_value(&[]) < 1e-5, "{mean}");
        assert!((var - 1.0).abs().max().double_value(&[]) < 1e-3);
    }

    #[test]
    fn zero_sizes_are_rejected_naming_the_field() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ProjectionHeadConfig { output_dim: 0, ..ProjectionHeadConfig::simclr(8) };
        let err = ProjectionHead::new(&vs.root(), &cfg).unwrap_err().to_string();
        assert!(err.contains("projection_head.output_dim = 0"), "{err}");
    }
}
