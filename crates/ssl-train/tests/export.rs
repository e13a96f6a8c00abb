//! `ssl export`: the backbone alone under torchvision's names. For torchvision's ResNet-18
//! shape the file holds exactly the keys of `torchvision.models.resnet18().state_dict()` but
//! `fc.weight` and `fc.bias`: 122 − 2 = 120, the 20 BatchNorms' `num_batches_tracked`
//! included; the values are the checkpoint's.

mod common;
use common::{add_in_place, tiny};

use std::collections::HashMap;

use ssl_testutil::ScratchDir;
use ssl_train::export::{export_backbone, ExportFormat};
use ssl_train::run_dir::{RunDir, CHECKPOINT};
use ssl_train::{build_model, Config, Method};
use tch::{Device, Kind, Tensor};

const RESNET18: [&str; 5] = [
    "data.format=cifar10", // RGB images (never read: the tests only build and export)
    "model.backbone.layers=[2, 2, 2, 2]",
    "model.backbone.width=64",
    "model.backbone.in_channels=3",
    "model.backbone.stem=image_net",
];

/// A run directory named `name` holding `cfg` and a checkpoint of its freshly built model with
/// each `(variable, δ)` of `nudges` added first (off the seeded init, so that a checkpoint that
/// did not reach the export shows); the model and its variables.
fn checkpointed(
    cfg: &Config,
    name: &str,
    nudges: &[(&str, f64)],
) -> (ScratchDir, HashMap<String, Tensor>, Box<dyn Method>) {
    let dir = ScratchDir::new(name);
    let run = RunDir::create(&dir, cfg).unwrap();
    let (vs, model) = build_model(cfg, Device::Cpu).unwrap();
    let vars = vs.variables();
    for (name, delta) in nudges {
        add_in_place(&vars, name, *delta);
    }
    run.save_checkpoint(&vs).unwrap();
    (dir, vars, model)
}

#[test]
fn a_resnet18_exports_torchvisions_keys_but_fc_with_the_checkpoints_values() {
    let cfg = tiny("simclr-fmnist.yaml", &RESNET18);
    let (dir, vars, _model) =
        checkpointed(&cfg, "export", &[("backbone.layer3.1.conv2.weight", 0.5)]);

    let out = dir.join("backbone.safetensors");
    assert_eq!(export_backbone(&dir.join(CHECKPOINT), &out, None).unwrap(), 120);
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
    let (dir, _vars, _model) =
        checkpointed(&tiny("simclr-fmnist.yaml", &[]), "export-mismatch", &[]);
    // The config beside it now describes a 4-stage network: layer4 is missing from the file.
    RunDir::create(&dir, &tiny("simclr-fmnist.yaml", &["model.backbone.layers=[1, 1, 1, 1]"]))
        .unwrap();
    let err = export_backbone(&dir.join(CHECKPOINT), &dir.join("b.safetensors"), None).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(CHECKPOINT) && msg.contains("layer4.0.conv1.weight"), "{msg}");
}

/// Loads `weights` into `torchvision.models.resnet18()` (fc dropped) with `strict=True` and
/// writes its eval-mode features of `input` to `out`.
const TORCHVISION_LOAD: &str = r#"
import sys, torch, torchvision
from safetensors.torch import load_file, save_file
weights, inputs, out = sys.argv[1:4]
m = torchvision.models.resnet18()
m.fc = torch.nn.Identity()
m.load_state_dict(load_file(weights), strict=True)
m.eval()
with torch.no_grad():
    save_file({"features": m(load_file(inputs)["x"])}, out)
"#;

#[test]
fn the_export_loads_strictly_into_torchvision_resnet18_and_computes_our_features() {
    let Ok(python) = std::env::var("SSL_RS_PYTHON") else {
        // Only when libtorch was given as a directory without a Python: say so; set-up
        // installs torchvision into its venv, so `cargo xtask test` always runs this.
        eprintln!("SKIPPED: SSL_RS_PYTHON is unset, no PyTorch to load the export into");
        return;
    };
    let _rng = ssl_testutil::seed_global_rng(0);
    let nudges =
        [("backbone.layer1.0.bn1.running_mean", 0.3), ("backbone.layer4.1.conv2.weight", 0.01)];
    let cfg = tiny("simclr-fmnist.yaml", &RESNET18);
    let (dir, _vars, model) = checkpointed(&cfg, "export-torchvision", &nudges);
    let out = dir.join("backbone.safetensors");
    export_backbone(&dir.join(CHECKPOINT), &out, None).unwrap();

    let x = Tensor::rand([2, 3, 64, 64], (Kind::Float, Device::Cpu));
    let inputs = dir.join("input.safetensors");
    Tensor::write_safetensors(&[("x", &x)], &inputs).unwrap();
    let features = dir.join("features.safetensors");
    let status = std::process::Command::new(&python)
        .args(["-c", TORCHVISION_LOAD])
        .args([&out, &inputs, &features])
        .status()
        .unwrap();
    assert!(status.success(), "{python} could not load the export: run `cargo xtask setup`");
    let theirs = &Tensor::read_safetensors(&features).unwrap()[0].1;
    let ours = tch::no_grad(|| model.backbone().forward_t(&x, false));
    let diff = (theirs - &ours).abs().max().double_value(&[]);
    assert!(diff < 1e-4, "torchvision vs ours: {diff}");
}

#[test]
fn a_vit_exports_timms_names_and_refuses_torchvisions() {
    let vit = "model.backbone={name: vit, image_size: 12, patch_size: 4, in_channels: 1, \
               embed_dim: 32, depth: 2, num_heads: 2, mlp_ratio: 4}";
    let cfg = tiny(
        "simclr-fmnist.yaml",
        &[vit, "augment.crop.size=[12, 12]", "eval.resize={size: [12, 12], antialias: true}"],
    );
    let (dir, _vars, _model) = checkpointed(&cfg, "export-vit", &[]);
    let out = dir.join("vit.safetensors");
    let err = export_backbone(&dir.join(CHECKPOINT), &out, Some(ExportFormat::Torchvision));
    assert!(err.unwrap_err().to_string().contains("--format timm"));
    export_backbone(&dir.join(CHECKPOINT), &out, Some(ExportFormat::Timm)).unwrap();
    // timm 1.0.31's own `state_dict` of this ViT, as make_fixtures.py saved it.
    let timm = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ssl-models/tests/fixtures/vit_token.weights.safetensors");
    let keys = |p: &std::path::Path| {
        let mut k: Vec<String> =
            Tensor::read_safetensors(p).unwrap().into_iter().map(|(k, _)| k).collect();
        k.sort();
        k
    };
    assert_eq!(keys(&out), keys(&timm));
}
