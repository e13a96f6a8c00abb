//! `zero_init_residual`: every block's last BatchNorm starts at γ = 0, so a block without a
//! downsample starts as the identity on its (non-negative, post-ReLU) input — a second block in
//! a stage then changes nothing, which only holds with the option on.

use ssl_models::{Block, ResNet, ResNetConfig, Stem};
use ssl_testutil::seed_global_rng;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

fn config(block: Block, blocks: i64, zero: bool) -> ResNetConfig {
    ResNetConfig {
        block,
        layers: vec![blocks],
        width: 8,
        in_channels: 1,
        stem: Stem::Cifar,
        zero_init_residual: zero,
        ..ResNetConfig::resnet18()
    }
}

/// The feature map of `x` in train and eval mode, the weights drawn after `manual_seed(7)`, so
/// that two networks share their stem and first block.
fn maps(cfg: &ResNetConfig, x: &Tensor) -> (Tensor, Tensor) {
    tch::manual_seed(7);
    let vs = VarStore::new(Device::Cpu);
    let net = ResNet::new(&vs.root(), cfg).unwrap();
    (net.feature_map_t(x, true), net.feature_map_t(x, false))
}

#[test]
fn a_second_block_starts_as_the_identity_only_with_zero_init() {
    let _rng = seed_global_rng(3);
    let x = Tensor::rand([4, 1, 8, 8], (Kind::Float, Device::Cpu));
    for block in [Block::Basic, Block::Bottleneck] {
        let (one, one_eval) = maps(&config(block, 1, true), &x);
        let (two, two_eval) = maps(&config(block, 2, true), &x);
        let diff = (&one - &two).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "{block:?}: train-mode maps differ by {diff}");
        assert!(one_eval.allclose(&two_eval, 1e-6, 1e-6, false), "{block:?}: eval mode");
        let (plain_one, _) = maps(&config(block, 1, false), &x);
        let (plain_two, _) = maps(&config(block, 2, false), &x);
        let moved = (&plain_one - &plain_two).abs().max().double_value(&[]);
        assert!(moved > 1e-2, "{block:?}: without zero init the second block moves the map");
    }
}

#[test]
fn only_the_last_batchnorm_of_each_block_starts_at_zero() {
    let _rng = seed_global_rng(4); // it draws weights beside a seeded test
    let vs = VarStore::new(Device::Cpu);
    let cfg = ResNetConfig { zero_init_residual: true, ..ResNetConfig::resnet18() };
    let net = ResNet::new(&vs.root(), &cfg).unwrap();
    let vars = vs.variables();
    let sum = |name: &str| vars[name].sum(Kind::Double).double_value(&[]);
    for stage in 1..=4 {
        for block in 0..2 {
            let p = format!("layer{stage}.{block}");
            assert_eq!(sum(&format!("{p}.bn2.weight")), 0.0, "{p}.bn2");
            let width = vars[&format!("{p}.bn1.weight")].numel() as f64;
            assert_eq!(sum(&format!("{p}.bn1.weight")), width, "{p}.bn1 keeps γ = 1");
        }
    }
    assert_eq!(
        sum("layer2.0.downsample.1.weight"),
        128.0,
        "the downsample's BatchNorm keeps γ = 1"
    );
    let features = net.forward_t(&Tensor::rand([2, 3, 64, 64], (Kind::Float, Device::Cpu)), false);
    assert_eq!(features.size(), [2, 512]);
}
