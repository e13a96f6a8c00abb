//! `ssl embed`: the features written are the checkpoint's backbone (not a fresh one) on the
//! split's images in the files' order, in eval mode, with the split's labels, and they survive
//! the safetensors round trip.

mod common;
use common::{add_in_place, tiny};

use ssl_data::{IdxImages, Split};
use ssl_testutil::ScratchDir;
use ssl_train::build_model;
use ssl_train::embed::embed_checkpoint;
use ssl_train::run_dir::{RunDir, CHECKPOINT};
use tch::{Device, Kind, Tensor};

#[test]
fn the_features_are_the_checkpoints_backbone_on_the_split_in_order() {
    let no_resize = ["eval.resize=null".to_string()];
    let cfg = tiny("simclr-fmnist.yaml", &["eval.resize=null"]);
    let dir = ScratchDir::new("embed");
    let run = RunDir::create(&dir, &cfg).unwrap();
    let (vs, model) = build_model(&cfg, Device::Cpu).unwrap();
    // Moved off the seeded initialisation, so a checkpoint that failed to load would show.
    add_in_place(&vs.variables(), "backbone.conv1.weight", 0.25);
    run.save_checkpoint(&vs).unwrap();

    let e = embed_checkpoint(&dir.join(CHECKPOINT), &no_resize, Split::Test, Device::Cpu).unwrap();
    let set = IdxImages::fashion_mnist(&cfg.data.dir, Split::Test).unwrap();
    assert_eq!(e.features.size(), [set.len() as i64, model.backbone().feature_dim()]);
    assert!(e.labels.as_ref().unwrap().equal(&set.labels_tensor().unwrap()));
    // Rows 0, 1 and the last, by hand: pixels / 255 through the eval-mode backbone.
    let rows = Tensor::from_slice(&[0i64, 1, set.len() as i64 - 1]);
    let x = set.to_tensor().index_select(0, &rows).to_kind(Kind::Float) / 255.0;
    let want = tch::no_grad(|| model.backbone().forward_t(&x, false));
    let got = e.features.index_select(0, &rows);
    assert!(got.allclose(&want, 1e-4, 1e-5, false), "{got} vs {want}");

    let out = dir.join("features.safetensors");
    e.write(&out).unwrap();
    let back: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(&out).unwrap().into_iter().collect();
    assert!(back["features"].equal(&e.features));
    assert_eq!(back["labels"].kind(), Kind::Int64);
}

#[test]
fn a_checkpoint_without_its_runs_config_is_an_error_naming_the_file() {
    let dir = ScratchDir::new("embed-no-config");
    let err = embed_checkpoint(&dir.join(CHECKPOINT), &[], Split::Test, Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("config.yaml"), "{err}");
}
