//! `ssl export`: the backbone alone under torchvision's names. For torchvision's ResNet-18
//! shape the file holds exactly the keys of `torchvision.models.resnet18().state_dict()` but
//! `fc.weight` and `fc.bias`: 122 − 2 = 120, the 20 BatchNorms' `num_batches_tracked`
//! included; the values are the checkpoint's.

mod common;
use common::{add_in_place, tiny};

use std::collections::HashMap;

use ssl_testutil::ScratchDir;
use ssl_train::build_model;
use ssl_train::export::export_backbone;
use ssl_train::run_dir::{RunDir, CHECKPOINT};
use tch::{Device, Kind, Tensor};

const RESNET18: [&str; 4] = [
    "model.backbone.layers=[2, 2, 2, 2]",
    "model.backbone.width=64",
    "model.backbone.in_channels=3",
    "model.backbone.stem=image_net",
];

#[test]
fn a_resnet18_exports_torchvisions_keys_but_fc_with_the_checkpoints_values() {
    let cfg = tiny("simclr-fmnist.yaml", &RESNET18);
    let dir = ScratchDir::new("export");
    let run = RunDir::create(&dir, &cfg).unwrap();
    let (vs, _model) = build_model(&cfg, Device::Cpu).unwrap();
    let vars = vs.variables();
    add_in_place(&vars, "backbone.layer3.1.conv2.weight", 0.5);
    run.save_checkpoint(&vs).unwrap();

    let out = dir.join("backbone.safetensors");
    assert_eq!(export_backbone(&dir.join(CHECKPOINT), &out).unwrap(), 120);
    let back: HashMap<String, Tensor> =
        Tensor::read_safetensors(&out).unwrap().into_iter().collect();
    assert_eq!(back.len(), 120);
    assert!(back["layer3.1.conv2.weight"].equal(&vars["backbone.layer3.1.conv2.weight"]));
    assert!(back["layer2.0.downsample.1.running_var"]
        .equal(&vars["backbone.layer2.0.downsample.1.running_var"]));
    let counters: Vec<&String> =
        back.keys().filter(|k| k.ends_with("num_batches_tracked")).collect();
    assert_eq!(counters.len(), 20, "{counters:?}");
    assert_eq!(back["layer4.1.bn2.num_batches_tracked"].kind(), Kind::Int64);
    assert!(!back.keys().any(|k| k.starts_with("head.") || k.starts_with("fc.")));
}

#[test]
fn a_checkpoint_of_another_backbone_is_an_error_naming_it() {
    let cfg = tiny("simclr-fmnist.yaml", &[]);
    let dir = ScratchDir::new("export-mismatch");
    let run = RunDir::create(&dir, &cfg).unwrap();
    let (vs, _model) = build_model(&cfg, Device::Cpu).unwrap();
    run.save_checkpoint(&vs).unwrap();
    // The config beside it now describes a 4-stage network: layer4 is missing from the file.
    RunDir::create(&dir, &tiny("simclr-fmnist.yaml", &["model.backbone.layers=[1, 1, 1, 1]"]))
        .unwrap();
    let err = export_backbone(&dir.join(CHECKPOINT), &dir.join("b.safetensors")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(CHECKPOINT) && msg.contains("layer4.0.conv1.weight"), "{msg}");
}
