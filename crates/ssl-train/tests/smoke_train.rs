//! Two SimCLR steps of a tiny model on Fashion-MNIST through the library, with a run directory:
//! the losses respect NT-Xent's bounds, metrics and the checkpoint are written, and the
//! checkpoint loads back into a fresh model that computes the same features.

use std::path::Path;

use ssl_testutil::ScratchDir;
use ssl_train::run_dir::CHECKPOINT;
use ssl_train::{build_model, config, RunDir};
use tch::{Device, Kind, Tensor};

#[test]
fn two_steps_of_a_tiny_model_write_a_run_that_reloads() {
    let dir = std::env::var("SSL_RS_DATA_DIR")
        .expect("SSL_RS_DATA_DIR is unset: run `cargo xtask setup` first (it installs the data)");
    let config_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/simclr-fmnist.yaml");
    let overrides: Vec<String> = [
        format!("data.dir={dir}"),
        "data.batch_size=16".into(),
        "model.backbone.width=4".into(),
        "method.projection.hidden_dim=8".into(),
        "method.projection.output_dim=8".into(),
        "train.max_steps=2".into(),
        "eval.monitor_bank=0".into(),
        "checkpoint.every_steps=1".into(),
    ]
    .into();
    let cfg = config::load(&config_path, &overrides).unwrap();
    let run_path = ScratchDir::new("smoke");
    let run = RunDir::create(&run_path, &cfg).unwrap();
    let trained = ssl_train::train(&cfg, Some(&run)).unwrap();

    assert_eq!(trained.losses.len(), 2);
    // Cosines lie in [-1, 1], so each term is at most ln(1 + (2N - 2) e^{2/τ}) with 2N = 32 and
    // τ from the config, and at least 0.
    let ssl_train::config::MethodConfig::Simclr(simclr) = &cfg.method else {
        panic!("the default config is SimCLR's")
    };
    let bound = (1.0 + 30.0 * (2.0 / simclr.loss.temperature).exp()).ln();
    for loss in &trained.losses {
        assert!(loss.is_finite() && *loss > 0.0 && *loss <= bound, "{loss}");
    }
    let metrics = std::fs::read_to_string(run_path.join("metrics.jsonl")).unwrap();
    // Two step lines, then the epoch's line (its loss, collapse monitors; no kNN monitor here).
    assert_eq!(metrics.lines().count(), 3);
    assert!(metrics.lines().nth(2).unwrap().contains("\"rankme\":"), "{metrics}");
    assert!(metrics.lines().next().unwrap().starts_with("{\"step\":0,\"epoch\":0,\"loss\":"));
    let saved = config::load(&run_path.join("config.yaml"), &[]).unwrap();
    assert_eq!(saved, trained.config, "the resolved config round-trips");
    assert_ne!(saved.model.backbone.precision(), ssl_models::Precision::Auto, "precision resolved");

    let (mut vs, fresh) = build_model(&cfg, Device::Cpu).unwrap();
    let x = Tensor::rand([3, 1, 28, 28], (Kind::Float, Device::Cpu));
    let before = fresh.backbone().forward_t(&x, false);
    vs.load(run_path.join(CHECKPOINT)).unwrap();
    let trained_features = trained.model.backbone().forward_t(&x, false);
    let loaded = fresh.backbone().forward_t(&x, false);
    assert!(loaded.allclose(&trained_features, 1e-6, 1e-6, false));
    assert!(!before.allclose(&trained_features, 1e-6, 1e-6, false), "two steps moved the weights");
}
