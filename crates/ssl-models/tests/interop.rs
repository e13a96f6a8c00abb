//! Interop with PyTorch: torchvision's ResNet and timm's ViT `state_dict`s load by name into
//! ours, and our outputs match PyTorch's on the same input, in eval and in train mode (and the
//! BatchNorm running statistics after a train-mode forward). The fixtures are written by
//! `tests/fixtures/make_fixtures.py` (torchvision 0.26.0, timm 1.0.31) and committed, so these
//! tests need no Python.

use std::collections::HashMap;
use std::path::PathBuf;

use ssl_models::{Backbone, BackboneConfig, Block, Pool, PosEmbed, Precision, ResNetConfig};
use ssl_models::{ConvAlgorithm, Stem, VitConfig};
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// PyTorch and libtorch run the same kernels on the same machine, so the outputs agree far
/// inside this; a wrong name, layout or formula is off by O(1).
const TOL: f64 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn io(name: &str) -> HashMap<String, Tensor> {
    let path = fixture(&format!("{name}.io.safetensors"));
    Tensor::read_safetensors(&path).unwrap().into_iter().collect()
}

/// Our backbone of `cfg` with the fixture's weights, and its variables.
fn load(name: &str, cfg: &BackboneConfig) -> (VarStore, Box<dyn Backbone>) {
    let mut vs = VarStore::new(Device::Cpu);
    let net = cfg.build(&vs.root()).unwrap();
    vs.load(fixture(&format!("{name}.weights.safetensors"))).unwrap();
    (vs, net)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

/// Eval-mode and train-mode features, then the running statistics the train forward left.
fn check_resnet(name: &str, cfg: ResNetConfig) {
    let want = io(name);
    let (vs, net) = load(name, &BackboneConfig::ResNet(cfg));
    let x = &want["input"];
    let eval = tch::no_grad(|| net.forward_t(x, false));
    assert!(
        max_diff(&eval, &want["eval"]) < TOL,
        "{name} eval: {}",
        max_diff(&eval, &want["eval"])
    );
    let train = tch::no_grad(|| net.forward_t(x, true));
    assert!(max_diff(&train, &want["train"]) < TOL, "{name} train");
    let vars = vs.variables();
    let mut stats = 0;
    for (key, value) in &want {
        if let Some(var) = key.strip_prefix("running.") {
            assert!(max_diff(&vars[var], value) < TOL, "{name}: {var}");
            stats += 1;
        }
    }
    assert!(stats >= 10, "{name}: only {stats} running statistics in the fixture");
}

fn basic_cifar(channels_last: bool, conv_algorithm: ConvAlgorithm) -> ResNetConfig {
    ResNetConfig {
        block: Block::Basic,
        layers: vec![1, 1, 1, 1],
        width: 8,
        in_channels: 1,
        stem: Stem::Cifar,
        channels_last,
        precision: Precision::F32,
        zero_init_residual: false,
        conv_algorithm,
    }
}

#[test]
fn torchvision_basic_block_resnet_with_a_cifar_stem_matches_nchw_and_channels_last() {
    check_resnet("resnet_basic_cifar", basic_cifar(false, ConvAlgorithm::Direct));
    check_resnet("resnet_basic_cifar", basic_cifar(true, ConvAlgorithm::Direct));
}

/// The same fixtures with every stride-1 3×3 convolution (all but the first of stages 2–4)
/// computed by Winograd F(4×4, 3×3): torchvision's direct convolutions agree within `TOL`.
#[test]
fn torchvision_resnets_match_with_winograd_convolutions() {
    check_resnet("resnet_basic_cifar", basic_cifar(false, ConvAlgorithm::Winograd));
    check_resnet("resnet_basic_cifar", basic_cifar(true, ConvAlgorithm::Winograd));
    check_resnet("resnet_bottleneck_imagenet", bottleneck(ConvAlgorithm::Winograd));
}

#[test]
fn torchvision_bottleneck_resnet_with_the_imagenet_stem_matches() {
    check_resnet("resnet_bottleneck_imagenet", bottleneck(ConvAlgorithm::Direct));
}

fn bottleneck(conv_algorithm: ConvAlgorithm) -> ResNetConfig {
    ResNetConfig {
        block: Block::Bottleneck,
        layers: vec![1, 2, 1, 1],
        width: 4,
        in_channels: 3,
        stem: Stem::ImageNet,
        ..basic_cifar(false, conv_algorithm)
    }
}

fn check_vit(name: &str, pool: Pool) {
    let want = io(name);
    let cfg = VitConfig {
        image_size: 12,
        patch_size: 4,
        in_channels: 1,
        embed_dim: 32,
        depth: 2,
        num_heads: 2,
        mlp_ratio: 4,
        pos_embed: PosEmbed::Learned,
        pool,
        frozen_patch_embed: false,
        precision: Precision::F32,
    };
    let (_vs, net) = load(name, &BackboneConfig::Vit(cfg.clone()));
    let x = &want["input"];
    for (mode, train) in [("eval", false), ("train", true)] {
        let got = tch::no_grad(|| net.forward_t(x, train));
        assert!(
            max_diff(&got, &want[mode]) < TOL,
            "{name} {mode}: {}",
            max_diff(&got, &want[mode])
        );
    }
    // forward_features' patch tokens are our feature map, row by row.
    let map = tch::no_grad(|| net.feature_map_t(x, false)); // [N, D, 3, 3]
    let patches = want["tokens"].narrow(1, 1, 9).transpose(1, 2).reshape([3, 32, 3, 3]);
    assert!(max_diff(&map, &patches) < TOL, "{name} tokens");
}

#[test]
fn timm_vision_transformer_with_the_class_token_matches() {
    check_vit("vit_token", Pool::Cls);
}

#[test]
fn timm_vision_transformer_with_average_pooling_and_no_fc_norm_matches() {
    check_vit("vit_avg", Pool::Mean);
}

#[test]
fn a_loaded_fixture_differs_from_a_fresh_network() {
    // The check above cannot pass by both sides ignoring the weights: a fresh network is far off.
    let want = io("resnet_basic_cifar");
    let vs = VarStore::new(Device::Cpu);
    let net =
        BackboneConfig::ResNet(basic_cifar(false, ConvAlgorithm::Auto)).build(&vs.root()).unwrap();
    let fresh = tch::no_grad(|| net.forward_t(&want["input"], false));
    assert!(max_diff(&fresh, &want["eval"]) > 0.1);
}
