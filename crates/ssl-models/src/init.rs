//! Layer constructors with PyTorch's initialisation (tch's defaults differ for BatchNorm).

use tch::nn::{self, init::FanInOut, init::NonLinearity, init::NormalOrUniform, Init};

/// torchvision ResNet's conv init: `kaiming_normal_(mode="fan_out", nonlinearity="relu")`.
const CONV_INIT: Init = Init::Kaiming {
    dist: NormalOrUniform::Normal,
    fan: FanInOut::FanOut,
    non_linearity: NonLinearity::ReLU,
};

/// A bias-free square convolution.
pub(crate) fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride,
        padding: k / 2,
        bias: false,
        ws_init: CONV_INIT,
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, cfg)
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
