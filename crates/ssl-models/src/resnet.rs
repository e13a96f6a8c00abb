//! ResNet backbones (He et al. 2016) with torchvision's layout and variable names.

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use crate::init::{batch_norm2d, conv, to_nhwc, Conv};
use crate::{ConvAlgorithm, CpuFeatures, ModelError, Precision, PrecisionChoice, Result};

/// The first layers of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Stem {
    /// 7×7 conv with stride 2, then 3×3 max-pool with stride 2 (ImageNet, 224 px inputs).
    ImageNet,
    /// 3×3 conv with stride 1 and no max-pool, for 32 px inputs (SimCLR Appendix B.9).
    Cifar,
}

/// The residual block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Block {
    /// Two 3×3 convs (ResNet-18/34); expansion 1.
    Basic,
    /// 1×1, 3×3 (with the stride), 1×1 convs (ResNet-50/101, torchvision v1.5); expansion 4.
    Bottleneck,
}

impl Block {
    fn expansion(self) -> i64 {
        match self {
            Block::Basic => 1,
            Block::Bottleneck => 4,
        }
    }
}

/// The narrowest width that runs channels-last (see [`ResNet::new`]).
const MIN_NHWC_WIDTH: i64 = 8;

/// Settings of [`ResNet`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct ResNetConfig {
    /// The residual block type.
    pub block: Block,
    /// Blocks per stage; stage `i` has `width · 2ⁱ` channels (before expansion) and every stage
    /// after the first halves the resolution. ResNet-18 is `[2, 2, 2, 2]`.
    pub layers: Vec<i64>,
    /// Channels of the stem and the first stage (64 in the paper).
    pub width: i64,
    /// Input channels (3 for RGB, 1 for grayscale).
    pub in_channels: i64,
    /// The stem.
    pub stem: Stem,
    /// Run on channels-last (NHWC) activations and conv weights, the layout oneDNN's CPU
    /// convolutions and cuDNN's tensor-core kernels prefer: a multi-channel input switches
    /// before the stem, a one-channel input (whose NCHW and NHWC strides coincide) after the
    /// stem's convolution. The values are
    /// the same up to float rounding; on the project's 2-core CPU the default backbone's training
    /// step ran 1.33× faster (docs/benchmarks.md). Off when absent from a config. Ignored below
    /// width 8, where libtorch's NHWC weight gradient corrupts memory on AVX2 CPUs.
    #[cfg_attr(feature = "serde", serde(default))]
    pub channels_last: bool,
    /// The number format of the activations; `auto` (bf16 only where the hardware runs it
    /// fast, see [`Precision::resolve`]) when absent from a config.
    #[cfg_attr(feature = "serde", serde(default))]
    pub precision: Precision,
    /// Start every residual block's last BatchNorm at γ = 0, so that each block begins as
    /// the identity of its shortcut (Goyal et al. 2017, "Accurate, Large Minibatch SGD",
    /// §5.1; torchvision's `zero_init_residual`). Off when absent from a config.
    #[cfg_attr(feature = "serde", serde(default))]
    pub zero_init_residual: bool,
    /// How the stride-1 3×3 convolutions are computed; `auto` (Winograd F(4×4, 3×3) for f32
    /// on the CPU from 128 channels in training, 256 without a backward pass; libtorch's direct
    /// convolution elsewhere) when absent from a config. The outputs agree up to float
    /// rounding; see [`ConvAlgorithm`].
    #[cfg_attr(feature = "serde", serde(default))]
    pub conv_algorithm: ConvAlgorithm,
}

impl ResNetConfig {
    /// ResNet-18 for 224 px ImageNet inputs.
    pub fn resnet18() -> Self {
        Self {
            block: Block::Basic,
            layers: vec![2, 2, 2, 2],
            width: 64,
            in_channels: 3,
            stem: Stem::ImageNet,
            channels_last: false,
            precision: Precision::F32,
            zero_init_residual: false,
            conv_algorithm: ConvAlgorithm::Auto,
        }
    }

    /// ResNet-50 for 224 px ImageNet inputs.
    pub fn resnet50() -> Self {
        Self { block: Block::Bottleneck, layers: vec![3, 4, 6, 3], ..Self::resnet18() }
    }

    /// ResNet-18 with the CIFAR stem, as SimCLR uses for 32 px inputs.
    pub fn cifar_resnet18() -> Self {
        Self { stem: Stem::Cifar, ..Self::resnet18() }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the first invalid field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: String, reason| {
            Err(ModelError::InvalidConfig { model: "resnet", field, value, reason })
        };
        if self.layers.is_empty() || self.layers.iter().any(|&l| l < 1) {
            return bad("layers", format!("{:?}", self.layers), "needs ≥ 1 stage of ≥ 1 block");
        }
        if self.width < 1 {
            return bad("width", self.width.to_string(), "must be ≥ 1");
        }
        if self.in_channels < 1 {
            return bad("in_channels", self.in_channels.to_string(), "must be ≥ 1");
        }
        Ok(())
    }
}

/// One residual block; fields are named as in torchvision.
#[derive(Debug)]
struct Residual {
    convs: Vec<(Conv, nn::BatchNorm)>,
    downsample: Option<(Conv, nn::BatchNorm)>,
}

impl Residual {
    fn new(
        p: &nn::Path,
        block: Block,
        (c_in, planes): (i64, i64),
        stride: i64,
        algorithm: ConvAlgorithm,
    ) -> Self {
        let c_out = planes * block.expansion();
        let layers: Vec<(i64, i64, i64, i64)> = match block {
            Block::Basic => vec![(c_in, planes, 3, stride), (planes, planes, 3, 1)],
            Block::Bottleneck => {
                vec![(c_in, planes, 1, 1), (planes, planes, 3, stride), (planes, c_out, 1, 1)]
            }
        };
        let convs = layers
            .into_iter()
            .enumerate()
            .map(|(i, (ci, co, k, s))| {
                let n = i + 1;
                let c = conv(p / format!("conv{n}"), (ci, co), k, s, algorithm);
                (c, batch_norm2d(p / format!("bn{n}"), co))
            })
            .collect();
        let downsample = (stride != 1 || c_in != c_out).then(|| {
            let d = p / "downsample";
            (conv(&d / 0, (c_in, c_out), 1, stride, algorithm), batch_norm2d(&d / 1, c_out))
        });
        Self { convs, downsample }
    }

    /// Every convolution of the block, the shortcut's included.
    fn convs(&self) -> impl Iterator<Item = &Conv> {
        self.convs.iter().map(|(c, _)| c).chain(self.downsample.iter().map(|(c, _)| c))
    }

    /// γ = 0 in the last BatchNorm: the residual branch then adds β = 0 and the block starts
    /// as `relu(shortcut(x))`.
    fn zero_last_gamma(&self) {
        let (_, bn) = self.convs.last().expect("a block has convolutions");
        if let Some(ws) = &bn.ws {
            tch::no_grad(|| {
                let _ = ws.shallow_clone().zero_();
            });
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let last = self.convs.len() - 1;
        let mut y = x.shallow_clone();
        // ReLU and the residual sum in place on BatchNorm outputs, as torchvision's blocks
        // (`ReLU(inplace=True)`, `out += identity`): BatchNorm's backward needs its input, not
        // its output, so two activation-sized buffers a block are not allocated (its effect on
        // speed was inside bench-models' noise, docs/benchmarks.md).
        for (i, (c, bn)) in self.convs.iter().enumerate() {
            y = c.forward(&y).apply_t(bn, train);
            if i < last {
                let _ = y.relu_();
            }
        }
        match &self.downsample {
            Some((c, bn)) => y += c.forward(x).apply_t(bn, train),
            None => y += x,
        }
        let _ = y.relu_();
        y
    }
}

/// A ResNet backbone returning globally average-pooled features (no classifier).
///
/// Paper: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
/// <https://arxiv.org/abs/1512.03385>, Table 1.
///
/// ```text
/// h = AvgPool(stage_L(… stage_1(stem(x))))   stage_i: layers[i] residual blocks
/// block(x) = ReLU(F(x) + shortcut(x))        shortcut: identity or 1×1 conv + BN
/// ```
///
/// # Shapes
/// `x`: `[N, in_channels, H, W]` → `[N, feature_dim()]`.
#[derive(Debug)]
pub struct ResNet {
    conv1: Conv,
    bn1: nn::BatchNorm,
    max_pool: bool,
    stages: Vec<Vec<Residual>>,
    feature_dim: i64,
    channels_last: bool,
    /// [`Precision::F32`] or [`Precision::Bf16`]: `Auto` is resolved when it is set.
    precision: Precision,
}

impl ResNet {
    /// Creates the variables under `p` with torchvision's names (`conv1`, `bn1`, `layer1.0.…`).
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] when `cfg` fails [`ResNetConfig::validate`].
    pub fn new(p: &nn::Path, cfg: &ResNetConfig) -> Result<Self> {
        cfg.validate()?;
        let (k, stride) = match cfg.stem {
            Stem::ImageNet => (7, 2),
            Stem::Cifar => (3, 1),
        };
        let conv1 = conv(p / "conv1", (cfg.in_channels, cfg.width), k, stride, cfg.conv_algorithm);
        let bn1 = batch_norm2d(p / "bn1", cfg.width);
        let mut c_in = cfg.width;
        let mut stages = Vec::with_capacity(cfg.layers.len());
        for (i, &blocks) in cfg.layers.iter().enumerate() {
            let sp = p / format!("layer{}", i + 1);
            let planes = cfg.width << i;
            let stage = (0..blocks)
                .map(|b| {
                    let stride = if i > 0 && b == 0 { 2 } else { 1 };
                    let block = Residual::new(
                        &(&sp / b),
                        cfg.block,
                        (c_in, planes),
                        stride,
                        cfg.conv_algorithm,
                    );
                    if cfg.zero_init_residual {
                        block.zero_last_gamma();
                    }
                    c_in = planes * cfg.block.expansion();
                    block
                })
                .collect();
            stages.push(stage);
        }
        let max_pool = cfg.stem == Stem::ImageNet;
        // PyTorch 2.11's oneDNN corrupts the heap in the weight gradient of a stride-2 1×1
        // convolution with fewer than 8 input channels in NHWC on AVX2 CPUs (the downsample of
        // stage 2 when width < 8; `benches/reference/nhwc_small_conv_crash.py` reproduces it in
        // plain PyTorch), so such narrow networks keep NCHW.
        let channels_last = cfg.channels_last && cfg.width >= MIN_NHWC_WIDTH;
        if channels_last {
            // As PyTorch's `model.to(memory_format=torch.channels_last)`: the conv weights in
            // NHWC too, so that oneDNN does not reorder them on every call (same values; a
            // checkpoint writer must take contiguous copies, see ssl-train's `save_checkpoint`).
            for c in
                std::iter::once(&conv1).chain(stages.iter().flatten().flat_map(Residual::convs))
            {
                c.to_channels_last();
            }
        }
        let mut net = Self {
            conv1,
            bn1,
            max_pool,
            stages,
            feature_dim: c_in,
            channels_last,
            precision: Precision::F32,
        };
        net.set_precision(cfg.precision);
        Ok(net)
    }

    /// Switches the number format of the activations (the weights stay f32), resolving
    /// [`Precision::Auto`] for this machine and the variables' device; returns the choice and
    /// its reason. Evaluation uses it to follow the hardware whatever the training run chose.
    pub fn set_precision(&mut self, precision: Precision) -> PrecisionChoice {
        let device = self.bn1.running_mean.device();
        let choice = precision.resolve(device, &CpuFeatures::detect());
        self.precision = choice.precision;
        choice
    }

    /// The length of the feature vector [`ModuleT::forward_t`] returns.
    pub fn feature_dim(&self) -> i64 {
        self.feature_dim
    }

    /// The last stage's feature map before pooling, in f32 whatever the activations' format
    /// (DenseCL's dense features).
    ///
    /// # Shapes
    /// `x`: `[N, in_channels, H, W]` → `[N, feature_dim(), H', W']` (H' = H / 4 for the CIFAR
    /// stem with three stages).
    pub fn feature_map_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.trunk(x, train).to_kind(Kind::Float)
    }

    /// Stem and stages, in the activations' format.
    fn trunk(&self, x: &Tensor, train: bool) -> Tensor {
        let bf16 = self.precision == Precision::Bf16;
        let mut x = if bf16 { x.to_kind(Kind::BFloat16) } else { x.shallow_clone() };
        // Same shape, NHWC strides: convolutions, BatchNorm, ReLU and the residual sums all keep
        // the layout. A multi-channel input switches before the stem (the copy of the input is
        // the cheapest, and the stem's convolution then runs channels-last too, as PyTorch's
        // `memory_format=torch.channels_last` recipe does); a one-channel input's NCHW and NHWC
        // strides coincide and libtorch would not pick the channels-last kernels, so its stem's
        // output switches instead.
        let input_nhwc = self.channels_last && x.size()[1] > 1;
        if input_nhwc {
            x = to_nhwc(&x); // [N, C, H, W]
        }
        let mut y = self.conv1.forward(&x); // [N, width, H', W']
        if self.channels_last && !input_nhwc {
            y = to_nhwc(&y); // [N, width, H', W']
        }
        let mut y = y.apply_t(&self.bn1, train);
        let _ = y.relu_();
        if self.max_pool {
            y = y.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        for block in self.stages.iter().flatten() {
            y = block.forward_t(&y, train);
        }
        y
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let bf16 = self.precision == Precision::Bf16;
        let y = self.trunk(x, train); // [N, feature_dim, H', W']
        let h = y.adaptive_avg_pool2d([1, 1]).flatten(1, -1); // [N, feature_dim]
        if bf16 {
            h.to_kind(Kind::Float)
        } else {
            h
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn feature_dims_and_resolutions_follow_the_paper() {
        let _rng = ssl_testutil::seed_global_rng(1); // draws: weights, inputs
        let vs = nn::VarStore::new(Device::Cpu);
        let r50 = ResNet::new(&(vs.root() / "a"), &ResNetConfig::resnet50()).unwrap();
        assert_eq!(r50.feature_dim(), 2048);
        let cfg = ResNetConfig { width: 4, in_channels: 1, ..ResNetConfig::cifar_resnet18() };
        let small = ResNet::new(&(vs.root() / "b"), &cfg).unwrap();
        assert_eq!(small.feature_dim(), 32);
        let x = Tensor::rand([3, 1, 28, 28], (Kind::Float, Device::Cpu));
        assert_eq!(small.forward_t(&x, true).size(), [3, 32]);
    }

    #[test]
    fn the_feature_map_pools_to_the_features() {
        let _rng = ssl_testutil::seed_global_rng(5); // draws: weights, inputs
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ResNetConfig { width: 8, in_channels: 1, ..ResNetConfig::cifar_resnet18() };
        let net = ResNet::new(&vs.root(), &cfg).unwrap();
        let x = Tensor::rand([2, 1, 16, 16], (Kind::Float, Device::Cpu));
        let map = net.feature_map_t(&x, false);
        assert_eq!(map.size(), [2, 64, 2, 2]); // three stride-2 stages after a stride-1 stem
        let pooled = map.mean_dim([2i64, 3].as_slice(), false, Kind::Float);
        assert!(pooled.allclose(&net.forward_t(&x, false), 1e-6, 1e-6, false));
    }

    #[test]
    fn resnet18_has_torchvisions_parameter_count() {
        let _rng = ssl_testutil::seed_global_rng(2); // draws: weights, inputs
                                                     // torchvision resnet18 has 11,689,512 parameters; its fc layer holds 512·1000 + 1000.
        let vs = nn::VarStore::new(Device::Cpu);
        ResNet::new(&vs.root(), &ResNetConfig::resnet18()).unwrap();
        let trainable: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(trainable, 11_689_512 - 513_000);
    }

    #[test]
    fn channels_last_gives_the_same_features_and_gradients() {
        // One channel (the stem's output switches layout) and three (the input switches, and
        // the stem runs channels-last), with either stem.
        let _rng = ssl_testutil::seed_global_rng(3); // draws: weights, inputs
        for (in_channels, stem, size) in
            [(1, Stem::Cifar, 12), (3, Stem::Cifar, 12), (3, Stem::ImageNet, 32)]
        {
            // In f64, so that only the layout differs and BatchNorm's backward (which subtracts
            // batch means) cannot blow f32 rounding up into a flaky tolerance.
            let cfg =
                ResNetConfig { width: 8, in_channels, stem, ..ResNetConfig::cifar_resnet18() };
            let (mut vs1, mut vs2) =
                (nn::VarStore::new(Device::Cpu), nn::VarStore::new(Device::Cpu));
            let nchw = ResNet::new(&vs1.root(), &cfg).unwrap();
            let nhwc =
                ResNet::new(&vs2.root(), &ResNetConfig { channels_last: true, ..cfg }).unwrap();
            vs1.double();
            vs2.double();
            vs2.copy(&vs1).unwrap();
            let x = Tensor::rand([4, in_channels, size, size], (Kind::Double, Device::Cpu));
            let grads = |net: &ResNet, vs: &nn::VarStore| {
                let h = net.forward_t(&x, true); // [4, 64]
                h.square().sum(Kind::Double).backward();
                let g = |k: &str| vs.variables()[k].grad();
                (h, g("layer1.0.conv1.weight"), g("conv1.weight"))
            };
            let ((a, ga, sa), (b, gb, sb)) = (grads(&nchw, &vs1), grads(&nhwc, &vs2));
            // The conv weights hold NHWC strides (channel stride 1), as PyTorch's channels-last.
            assert_eq!(vs2.variables()["layer1.0.conv1.weight"].stride()[1], 1);
            // The layout change is internal: the pooled features come back as a plain [N, F].
            assert_eq!(b.size(), [4, 64]);
            assert!(a.allclose(&b, 1e-10, 1e-12, false), "{}", (&a - &b).abs().max());
            assert!(ga.allclose(&gb, 1e-8, 1e-10, false), "{}", (&ga - &gb).abs().max());
            assert!(sa.allclose(&sb, 1e-8, 1e-10, false), "stem: {}", (&sa - &sb).abs().max());
        }
    }

    #[test]
    fn narrow_channels_last_networks_train_without_corrupting_memory() {
        let _rng = ssl_testutil::seed_global_rng(4); // draws: weights, inputs
                                                     // With 4 channels, NHWC made PyTorch 2.11's AVX2 weight gradient of the stride-2 1×1
                                                     // downsample write out of bounds: glibc aborted ("free(): invalid next size") or a
                                                     // thread spun forever within a few dozen steps. Such widths now run NCHW.
        let cfg = ResNetConfig {
            width: 4,
            in_channels: 1,
            channels_last: true,
            ..ResNetConfig::cifar_resnet18()
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNet::new(&vs.root(), &cfg).unwrap();
        assert!(!net.channels_last);
        for _ in 0..50 {
            let x = Tensor::rand([32, 1, 16, 16], (Kind::Float, Device::Cpu));
            net.forward_t(&x, true).square().sum(Kind::Float).backward();
        }
        let wide = ResNet::new(&(vs.root() / "w"), &ResNetConfig { width: 8, ..cfg }).unwrap();
        assert!(wide.channels_last);
    }

    #[test]
    fn bf16_agrees_with_f32_to_bf16_rounding_and_keeps_f32_gradients() {
        let _rng = ssl_testutil::seed_global_rng(5); // draws: weights, inputs
        let cfg = ResNetConfig { width: 8, in_channels: 1, ..ResNetConfig::cifar_resnet18() };
        let (vs1, mut vs2) = (nn::VarStore::new(Device::Cpu), nn::VarStore::new(Device::Cpu));
        let f32_net = ResNet::new(&vs1.root(), &cfg).unwrap();
        let mixed = ResNetConfig { precision: Precision::Bf16, channels_last: true, ..cfg };
        let bf16_net = ResNet::new(&vs2.root(), &mixed).unwrap();
        vs2.copy(&vs1).unwrap();
        let x = Tensor::rand([32, 1, 12, 12], (Kind::Float, Device::Cpu));
        // A random linear read-out, so the gradient is not dominated by the batch mean that
        // BatchNorm's backward subtracts.
        let r = Tensor::randn([32, 64], (Kind::Float, Device::Cpu));
        let grads = |net: &ResNet, vs: &nn::VarStore| {
            let h = net.forward_t(&x, true); // [32, 64]
            (&h * &r).sum(Kind::Float).backward();
            (h, vs.variables()["layer2.0.conv2.weight"].grad())
        };
        let ((a, ga), (b, gb)) = (grads(&f32_net, &vs1), grads(&bf16_net, &vs2));
        assert_eq!((b.kind(), gb.kind()), (Kind::Float, Kind::Float));
        let rel = |u: &Tensor, v: &Tensor| {
            f64::try_from((u - v).norm()).unwrap() / f64::try_from(v.norm()).unwrap()
        };
        // bf16 keeps 8 significant bits (relative rounding 2⁻⁹ ≈ 0.2 %); through 17 layers the
        // features drift by about 2 % (PyTorch's autocast: 2.2 % on the same network).
        assert!(rel(&b, &a) < 0.05, "features differ by {}", rel(&b, &a));
        // And they are not accidentally computed in f32: bf16 rounding does leave a trace.
        assert!(rel(&b, &a) > 1e-4, "{}", rel(&b, &a));
        // Weight gradients pass BatchNorm's backward, which subtracts batch means and so
        // amplifies rounding: their relative error is ~35 % on such a tiny network, as with
        // PyTorch's autocast (37 %), but they keep the f32 gradient's direction (cosine
        // 0.93–0.95 over ten random draws; a wrong backward would be near 0). The draws are
        // seeded under the shared lock, so the figure checked is the same on every run.
        let cos = f64::try_from((&ga * &gb).sum(Kind::Double)).unwrap()
            / f64::try_from(ga.norm() * gb.norm()).unwrap();
        assert!(cos > 0.85, "gradient cosine {cos}");
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ResNetConfig { layers: vec![2, 0], ..ResNetConfig::resnet18() };
        let err = ResNet::new(&vs.root(), &cfg).unwrap_err().to_string();
        assert!(err.contains("resnet.layers"), "{err}");
        let cfg = ResNetConfig { width: 0, ..ResNetConfig::resnet18() };
        assert!(ResNet::new(&vs.root(), &cfg).unwrap_err().to_string().contains("width"));
    }
}
