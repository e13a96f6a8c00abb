//! Layer constructors with PyTorch's initialisation (tch's defaults differ for BatchNorm), and the
//! kind and layout conversions the layers share.

use tch::nn::{self, init::FanInOut, init::NonLinearity, init::NormalOrUniform, Init};
use tch::{Kind, Tensor};

use crate::{winograd_conv3x3, ConvAlgorithm};

/// torchvision ResNet's conv init: `kaiming_normal_(mode="fan_out", nonlinearity="relu")`.
const CONV_INIT: Init = Init::Kaiming {
    dist: NormalOrUniform::Normal,
    fan: FanInOut::FanOut,
    non_linearity: NonLinearity::ReLU,
};

/// A bias-free square convolution whose weight is cast to its input's kind, so one f32 weight
/// serves f32 and bf16 activations (as `torch.autocast` casts it for each call).
#[derive(Debug)]
pub(crate) struct Conv {
    weight: Tensor,
    stride: i64,
    padding: i64,
    algorithm: ConvAlgorithm,
}

impl Conv {
    /// Gives the weight NHWC strides in place (same shape and values, the same variable).
    pub(crate) fn to_channels_last(&self) {
        let nhwc = to_nhwc(&self.weight);
        tch::no_grad(|| self.weight.shallow_clone().set_data(&nhwc));
    }

    /// `x`: `[N, C_in, H, W]` → `[N, C_out, H / stride, W / stride]`, in `x`'s kind; by
    /// Winograd where the conv's [`ConvAlgorithm`] picks it for `x`.
    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        let w = cast(&self.weight, x.kind());
        let ws = w.size(); // [C_out, C_in, k, k]
        let on = (x.kind(), x.device());
        let picks = |backward| {
            self.algorithm.uses_winograd(ws[2], self.stride, (ws[1], ws[0]), on, backward)
        };
        // A backward pass only widens the choice, so autograd is asked (a small op) only for
        // the convolutions where its answer decides.
        if picks(true) && (picks(false) || autograd_records(&w)) {
            return winograd_conv3x3(x, &w);
        }
        x.conv2d(&w, None::<Tensor>, [self.stride], [self.padding], [1], 1)
    }
}

/// Whether autograd records ops on `t`, so that a backward pass may follow: a product of one of
/// its elements requires grad only then (under `no_grad` it does not, while views keep the
/// flag, and tch has no query for the grad mode).
fn autograd_records(t: &Tensor) -> bool {
    // The first element by views (a `flatten` would copy a channels-last weight).
    let first = || (0..t.dim() as i64).fold(t.shallow_clone(), |v, d| v.narrow(d, 0, 1));
    t.requires_grad() && (first() * 1.0).requires_grad()
}

/// `t` in `kind`, without a copy when it already is (how one f32 weight serves f32 and bf16
/// activations, as `torch.autocast` casts it for each call).
pub(crate) fn cast(t: &Tensor, kind: Kind) -> Tensor {
    if t.kind() == kind {
        t.shallow_clone()
    } else {
        t.to_kind(kind)
    }
}

/// `x` with NHWC strides: the same shape and values, channels-last memory.
pub(crate) fn to_nhwc(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// A bias-free square convolution with its variable at `p / "weight"`, computed by `algorithm`
/// where it applies.
pub(crate) fn conv(
    p: nn::Path,
    (c_in, c_out): (i64, i64),
    k: i64,
    stride: i64,
    algorithm: ConvAlgorithm,
) -> Conv {
    let cfg = nn::ConvConfig {
        stride,
        padding: k / 2,
        bias: false,
        ws_init: CONV_INIT,
        ..Default::default()
    };
    let weight = nn::conv2d(p, c_in, c_out, k, cfg).ws;
    Conv { weight, stride, padding: k / 2, algorithm }
}

/// BatchNorm with weight 1 and bias 0, as PyTorch initialises it (tch draws the weight from
/// U(0, 1) by default).
pub(crate) fn batch_norm2d(p: nn::Path, c: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig { ws_init: Init::Const(1.0), ..Default::default() };
    nn::batch_norm2d(p, c, cfg)
}

/// One-dimensional BatchNorm with PyTorch's initialisation.
pub(crate) fn batch_norm1d(p: nn::Path, c: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig { ws_init: Init::Const(1.0), ..Default::default() };
    nn::batch_norm1d(p, c, cfg)
}

/// One-dimensional BatchNorm without a learnt scale and shift (`affine=False`): only the
/// running statistics, as on SimSiam's and MoCo v3's projector outputs.
pub(crate) fn batch_norm1d_plain(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm1d(p, c, nn::BatchNormConfig { affine: false, ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn auto_uses_winograd_at_128_channels_only_when_a_backward_may_follow() {
        let _rng = ssl_testutil::seed_global_rng(3); // draws: weights, input
        let vs = nn::VarStore::new(Device::Cpu);
        let c = conv(vs.root() / "c", (128, 128), 3, 1, ConvAlgorithm::Auto);
        let x = Tensor::randn([2, 128, 8, 8], (Kind::Float, Device::Cpu));
        let direct = x.conv2d(&c.weight, None::<Tensor>, [1], [1], [1], 1);
        // The direct path reproduces libtorch's convolution bit for bit; Winograd only to
        // rounding.
        let eval = tch::no_grad(|| c.forward(&x));
        assert!(eval.equal(&direct), "no_grad: the direct convolution");
        let train = c.forward(&x);
        assert!(train.requires_grad());
        assert!(!train.equal(&direct), "recorded by autograd: Winograd");
        assert!(train.allclose(&direct, 1e-4, 1e-4, false));
    }
}
