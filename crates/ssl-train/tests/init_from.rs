//! `model.init_from` (`ssl train --init-from`): torchvision's own `state_dict` of a ResNet
//! (the interop fixture, written by torchvision 0.26.0) starts MoCo v2's query encoder and its
//! momentum key encoder alike; our `ssl export` output round-trips; a file of another network
//! is an error naming the key and both shapes.

mod common;
use common::tiny;

use std::collections::HashMap;
use std::path::PathBuf;

use ssl_testutil::{seed_global_rng, ScratchDir};
use ssl_train::export::export_backbone;
use ssl_train::init_from::init_backbones;
use ssl_train::run_dir::{RunDir, CHECKPOINT};
use ssl_train::{build_model, config::MethodConfig, Method, Moco};
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// The fixture's network: torchvision BasicBlocks [1, 1, 1, 1], width 8, 1 channel, CIFAR stem.
const FIXTURE_NET: [&str; 4] = [
    "model.backbone.layers=[1, 1, 1, 1]",
    "model.backbone.width=8",
    "model.backbone.stem=cifar",
    "model.backbone.in_channels=1",
];

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ssl-models/tests/fixtures/resnet_basic_cifar.weights.safetensors")
}

#[test]
fn torchvision_weights_start_the_query_and_the_key_encoder() {
    let _rng = seed_global_rng(0);
    let cfg = tiny("mocov2-fmnist.yaml", &FIXTURE_NET);
    let MethodConfig::Mocov2(c) = &cfg.method else { panic!("MoCo v2's config") };
    let vs = VarStore::new(Device::Cpu);
    let mut moco = Moco::new(&vs, &cfg, c).unwrap();
    let report = init_backbones(&vs, &fixture()).unwrap();
    // torchvision's 12 BatchNorms (the stem's, two per block, three downsamples') each carry
    // a counter tch has no variable for.
    assert_eq!(report.ignored.len(), 12, "{:?}", report.ignored);
    assert!(report.ignored.iter().all(|k| k.ends_with("num_batches_tracked")));
    moco.reset_targets().unwrap();

    let file: HashMap<String, Tensor> =
        Tensor::read_safetensors(fixture()).unwrap().into_iter().collect();
    let (query, key) = (vs.variables(), moco.key_encoder().var_store().variables());
    let mut checked = 0;
    for (name, value) in &file {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        let ours = format!("backbone.{name}");
        assert!(query[&ours].equal(value), "query encoder {ours}");
        assert!(key[&ours].equal(value), "key encoder {ours}");
        checked += 1;
    }
    assert_eq!(checked, report.loaded);
    assert!(checked > 30, "{checked}");
}

#[test]
fn a_run_started_from_an_export_begins_at_the_exported_weights() {
    let _rng = seed_global_rng(0);
    let dir = ScratchDir::new("init-from");
    let cfg = tiny("byol-fmnist.yaml", &["train.max_steps=1"]);
    ssl_train::train(&cfg, Some(&RunDir::create(&dir.join("a"), &cfg).unwrap())).unwrap();
    let export = dir.join("a.safetensors");
    export_backbone(&dir.join("a").join(CHECKPOINT), &export, None).unwrap();

    // Run b: another seed, started from a's backbone; one step at a rate of 1e-12 moves no
    // weight measurably (the BatchNorm statistics do move: a train-mode forward updates them).
    let init = format!("model.init_from={}", export.display());
    let b = tiny("byol-fmnist.yaml", &["train.max_steps=1", "seed=7", "optim.lr=1e-12", &init]);
    ssl_train::train(&b, Some(&RunDir::create(&dir.join("b"), &b).unwrap())).unwrap();
    let read = |run: &str| -> HashMap<String, Tensor> {
        let path = dir.join(run).join(CHECKPOINT);
        Tensor::read_safetensors(path).unwrap().into_iter().collect()
    };
    let (a, b) = (read("a"), read("b"));
    let weights: Vec<&String> =
        a.keys().filter(|k| k.starts_with("backbone.") && !k.contains(".running_")).collect();
    assert!(weights.len() > 10);
    for k in &weights {
        assert!(a[*k].allclose(&b[*k], 1e-6, 1e-7, false), "{k}");
    }
    // Without it the seed-7 network starts elsewhere.
    let (fresh, _) = build_model(&tiny("byol-fmnist.yaml", &["seed=7"]), Device::Cpu).unwrap();
    let k = "backbone.conv1.weight";
    assert!(!fresh.variables()[k].allclose(&a[k], 1e-3, 1e-3, false));
}

#[test]
fn a_file_of_another_network_is_an_error_naming_the_key_and_both_shapes() {
    let cfg = tiny("mocov2-fmnist.yaml", &[]); // width 4, three stages: not the fixture's
    let (vs, _model) = build_model(&cfg, Device::Cpu).unwrap();
    let msg = init_backbones(&vs, &fixture()).unwrap_err().to_string();
    assert!(msg.contains("resnet_basic_cifar.weights.safetensors"), "{msg}");
    assert!(
        msg.contains("`bn1.bias` is [8]") && msg.contains("`backbone.bn1.bias` is [4]"),
        "{msg}"
    );
    let missing = init_backbones(&vs, std::path::Path::new("/nonexistent.safetensors"));
    assert!(missing.unwrap_err().to_string().contains("/nonexistent.safetensors"));
}
