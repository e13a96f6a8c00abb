//! Any method trains a ViT from YAML through the `Backbone` interface: two steps of SimCLR,
//! BYOL, DenseCL (patch tokens as its dense map) and the MoCo v3 ViT recipe on a one-block
//! ViT, each loss finite and the weights moved; the MoCo v3 run's checkpoint reloads into a
//! fresh model with the same features, and its config reads back with the ViT's name.

mod common;

use common::tiny;
use ssl_testutil::{seed_global_rng, ScratchDir};
use ssl_train::run_dir::CHECKPOINT;
use ssl_train::{build_model, config, RunDir};
use tch::{Device, Kind, Tensor};

/// A one-block ViT on 16 px inputs, and the views and evaluation at 16 px.
const VIT: [&str; 4] = [
    "model.backbone={name: vit, image_size: 16, patch_size: 4, in_channels: 1, embed_dim: 16, \
     depth: 1, num_heads: 2, mlp_ratio: 2}",
    "augment.crop.size=[16, 16]",
    "eval.resize={size: [16, 16], antialias: true}",
    "train.steps=2",
];

fn moved(file: &str, extra: &[&str]) {
    let _rng = seed_global_rng(0);
    let overrides: Vec<&str> = VIT.iter().copied().chain(extra.iter().copied()).collect();
    let cfg = tiny(file, &overrides);
    let x = Tensor::rand([3, 1, 16, 16], (Kind::Float, Device::Cpu));
    let (_vs, fresh) = build_model(&cfg, Device::Cpu).unwrap();
    let before = fresh.backbone().forward_t(&x, false);
    assert_eq!(before.size(), [3, 16], "{file}: the class token's 16 features");
    let trained = ssl_train::train(&cfg, None).unwrap();
    assert!(trained.losses.iter().all(|l| l.is_finite()), "{file}: {:?}", trained.losses);
    let after = trained.model.backbone().forward_t(&x, false);
    assert!(!after.allclose(&before, 1e-6, 1e-6, false), "{file}: two steps moved nothing");
}

#[test]
fn simclr_byol_and_densecl_train_a_vit() {
    moved("simclr-fmnist.yaml", &[]);
    moved("byol-fmnist.yaml", &["augment_view2.crop.size=[16, 16]"]);
    moved("densecl-fmnist.yaml", &[]);
}

#[test]
fn the_mocov3_vit_recipe_trains_saves_and_reloads() {
    let _rng = seed_global_rng(0);
    let cfg = tiny(
        "mocov3-fmnist-vit.yaml",
        // The recipe's ViT-Tiny shrunk to one narrow block (`tiny` set a ResNet width first).
        &["model.backbone={name: vit_tiny, image_size: 16, patch_size: 4, in_channels: 1, \
           depth: 1, embed_dim: 16, num_heads: 2, pos_embed: sin_cos, frozen_patch_embed: true}"],
    );
    let dir = ScratchDir::new("vit-run");
    let run = RunDir::create(&dir, &cfg).unwrap();
    let trained = ssl_train::train(&cfg, Some(&run)).unwrap();
    let saved = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    assert!(saved.contains("name: vit"), "{saved}");
    assert_eq!(config::load(&dir.join("config.yaml"), &[]).unwrap(), trained.config);

    let (mut vs, fresh) = build_model(&cfg, Device::Cpu).unwrap();
    vs.load(dir.join(CHECKPOINT)).unwrap();
    let x = Tensor::rand([2, 1, 16, 16], (Kind::Float, Device::Cpu));
    let (a, b) =
        (fresh.backbone().forward_t(&x, false), trained.model.backbone().forward_t(&x, false));
    assert!(a.allclose(&b, 1e-6, 1e-6, false));
    // MoCo v3's frozen patch projection did not move (build_model seeds as training does, so
    // `first` holds the run's initial weights); the first block did.
    let first = build_model(&cfg, Device::Cpu).unwrap().0;
    let (start, end) = (first.variables(), vs.variables());
    let key = "backbone.patch_embed.proj.weight";
    assert!(start[key].equal(&end[key]), "the frozen patch projection changed");
    let key = "backbone.blocks.0.attn.qkv.weight";
    assert!(!start[key].equal(&end[key]), "the first block did not train");
}

#[test]
fn a_vit_whose_views_are_another_size_is_a_config_error() {
    let cfg = common::configs().join("mocov3-fmnist-vit.yaml");
    let err = config::load(&cfg, &["augment.crop.size=[14, 14]".into()]).unwrap_err().to_string();
    assert!(err.contains("augment.crop.size") && err.contains("image_size"), "{err}");
    let err = config::load(&cfg, &["eval.resize=null".into()]).unwrap_err().to_string();
    assert!(err.contains("eval.resize") && err.contains("28"), "{err}");
    // SwAV's small crops (here 2 of 8 px beside 16 px views) cannot feed a 16 px ViT.
    let swav = common::configs().join("swav-fmnist.yaml");
    let vit: Vec<String> = VIT[..3]
        .iter()
        .map(|s| s.to_string())
        .chain(["method.n_local=2".into(), "method.local.crop.size=[8, 8]".into()])
        .collect();
    let err = config::load(&swav, &vit).unwrap_err().to_string();
    assert!(err.contains("method.local.crop.size"), "{err}");
}
