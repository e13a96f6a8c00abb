//! Parameter counts pinned to torchvision's, so that the architectures, not only the variable
//! names, are torchvision's: `sum(p.numel() for p in resnetXX().parameters())` minus the `fc`
//! classifier (512·1000 + 1000 for ResNet-18/34, 2048·1000 + 1000 for ResNet-50). BatchNorm's
//! running statistics are buffers, not parameters, in both libraries.

use ssl_models::{ResNet, ResNetConfig, Stem};
use tch::{nn, Device};

fn parameters(cfg: &ResNetConfig) -> i64 {
    let vs = nn::VarStore::new(Device::Cpu);
    ResNet::new(&vs.root(), cfg).unwrap();
    vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
}

#[test]
fn resnet18_has_torchvisions_parameters_without_fc() {
    assert_eq!(parameters(&ResNetConfig::resnet18()), 11_689_512 - 513_000);
}

#[test]
fn resnet34_has_torchvisions_parameters_without_fc() {
    let cfg = ResNetConfig { layers: vec![3, 4, 6, 3], ..ResNetConfig::resnet18() };
    assert_eq!(parameters(&cfg), 21_797_672 - 513_000);
}

#[test]
fn resnet50_has_torchvisions_parameters_without_fc() {
    assert_eq!(parameters(&ResNetConfig::resnet50()), 25_557_032 - 2_049_000);
}

#[test]
fn the_cifar_stem_swaps_the_7x7_stem_conv_for_a_3x3_one() {
    let cifar = ResNetConfig { stem: Stem::Cifar, ..ResNetConfig::resnet18() };
    // 64 output channels × 3 input channels × (7·7 − 3·3) weights fewer; no bias in either.
    assert_eq!(parameters(&cifar), 11_176_512 - 64 * 3 * (49 - 9));
}
