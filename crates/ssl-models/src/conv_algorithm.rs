//! Which algorithm a ResNet's stride-1 3×3 convolutions run: libtorch's direct convolution or
//! Winograd's F(4×4, 3×3) ([`winograd_conv3x3`](crate::winograd_conv3x3)).

use tch::{Device, Kind};

/// Input and output channels from which [`ConvAlgorithm::Auto`] picks Winograd. Measured on the
/// project's AVX2 CPU (AMD EPYC Zen 3, 2 cores), forward + backward at batch 256, channels-last
/// f32, against libtorch's (oneDNN's) direct convolution, four runs of
/// `cargo run -p ssl-models --example winograd_shapes`: 64 channels at 32 px 0.74–0.95× (the
/// transforms move more memory than the 4× fewer products save), 128 at 16 px 0.95–1.19×
/// (break-even within the machine's noise), 256 at 8 px 1.43–1.59×, 512 at 4 px 2.18–3.06×
/// (docs/benchmarks.md, "Winograd convolutions").
pub const AUTO_MIN_CHANNELS: i64 = 128;

/// The same threshold for a forward pass that no backward follows (evaluation, feature
/// extraction under `no_grad`): forward alone, Winograd ran 0.84× at 128 channels on 16 px,
/// 0.60× at 128 on 7 px (evaluation's 28 px images: partial tiles), 1.41× at 256 on 8 px and
/// 1.61× at 512 on 4 px (the fourth run of the example; docs/benchmarks.md).
pub const AUTO_MIN_CHANNELS_FORWARD_ONLY: i64 = 256;

/// How a ResNet computes its stride-1 3×3 convolutions (every other convolution, and every
/// one on bf16 activations, is libtorch's direct one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ConvAlgorithm {
    /// Winograd where it was measured faster: f32 activations on the CPU with at least
    /// [`AUTO_MIN_CHANNELS`] input and output channels when a backward pass follows (training;
    /// ResNet-18's stages 2–4 at width 64), [`AUTO_MIN_CHANNELS_FORWARD_ONLY`] when none does;
    /// [`ConvAlgorithm::Direct`] elsewhere, CUDA included (cuDNN picks its own algorithms).
    #[default]
    Auto,
    /// libtorch's `conv2d` always (oneDNN on the CPU, cuDNN on CUDA), as PyTorch's
    /// `nn.Conv2d` runs.
    Direct,
    /// Winograd F(4×4, 3×3) for every stride-1 3×3 convolution on f32 activations, on any
    /// device.
    Winograd,
}

impl ConvAlgorithm {
    /// Whether a `k × k` convolution with `stride` from `c_in` to `c_out` channels runs by
    /// Winograd on activations of `kind` on `device`; `backward`: whether autograd records the
    /// call (a backward pass may follow). `backward = true` never narrows the choice.
    pub fn uses_winograd(
        self,
        k: i64,
        stride: i64,
        (c_in, c_out): (i64, i64),
        (kind, device): (Kind, Device),
        backward: bool,
    ) -> bool {
        let fits = k == 3 && stride == 1 && kind == Kind::Float;
        match self {
            ConvAlgorithm::Direct => false,
            ConvAlgorithm::Winograd => fits,
            ConvAlgorithm::Auto => {
                let min = if backward { AUTO_MIN_CHANNELS } else { AUTO_MIN_CHANNELS_FORWARD_ONLY };
                fits && device == Device::Cpu && c_in.min(c_out) >= min
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_winograd_only_for_wide_stride_one_3x3_f32_convolutions_on_the_cpu() {
        let (f32, cpu) = (Kind::Float, Device::Cpu);
        let auto =
            |k, s, ch, kind, dev| ConvAlgorithm::Auto.uses_winograd(k, s, ch, (kind, dev), true);
        assert!(auto(3, 1, (128, 128), f32, cpu));
        assert!(auto(3, 1, (512, 512), f32, cpu));
        assert!(!auto(3, 1, (64, 64), f32, cpu), "measured slower at 64 channels");
        assert!(!auto(3, 1, (64, 128), f32, cpu));
        assert!(!auto(3, 2, (256, 256), f32, cpu), "stride 2");
        assert!(!auto(1, 1, (256, 256), f32, cpu), "1×1");
        assert!(!auto(3, 1, (256, 256), Kind::BFloat16, cpu), "bf16");
        assert!(!auto(3, 1, (256, 256), f32, Device::Cuda(0)), "cuDNN");
        let forward_only = |ch| ConvAlgorithm::Auto.uses_winograd(3, 1, ch, (f32, cpu), false);
        assert!(!forward_only((128, 128)), "measured slower at 128 channels without backward");
        assert!(forward_only((256, 256)));
        // The invariant `Conv::forward` relies on to ask autograd only when it decides.
        for alg in [ConvAlgorithm::Auto, ConvAlgorithm::Direct, ConvAlgorithm::Winograd] {
            for ch in [1, 64, 127, 128, 255, 256, 512] {
                for (k, s) in [(3, 1), (3, 2), (1, 1)] {
                    let on = (f32, cpu);
                    if alg.uses_winograd(k, s, (ch, ch), on, false) {
                        assert!(
                            alg.uses_winograd(k, s, (ch, ch), on, true),
                            "{alg:?} {ch} {k} {s}"
                        );
                    }
                }
            }
        }
        let forced = ConvAlgorithm::Winograd;
        assert!(forced.uses_winograd(3, 1, (1, 1), (f32, Device::Cuda(0)), false));
        assert!(!forced.uses_winograd(3, 2, (256, 256), (f32, cpu), true));
        assert!(!ConvAlgorithm::Direct.uses_winograd(3, 1, (512, 512), (f32, cpu), true));
    }
}
