//! Two SimCLR steps of a tiny model on Fashion-MNIST, through the library entry point.

use std::path::Path;

#[test]
fn two_steps_of_a_tiny_model_give_losses_within_nt_xents_bounds() {
    let dir = std::env::var("SSL_RS_DATA_DIR")
        .expect("SSL_RS_DATA_DIR is unset: run `cargo xtask setup` first (it installs the data)");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/simclr-fmnist.yaml");
    let overrides: Vec<String> = [
        format!("data.dir={dir}"),
        "data.batch_size=16".into(),
        "model.backbone.width=4".into(),
        "model.projection.hidden_dim=8".into(),
        "model.projection.output_dim=8".into(),
        "train.max_steps=2".into(),
    ]
    .into();
    let cfg = ssl_train::config::load(&config, &overrides).unwrap();
    let report = ssl_train::train(&cfg).unwrap();
    assert_eq!(report.steps, 2);
    // Cosines lie in [-1, 1], so each term is at most ln(1 + (2N - 2) e^{2/τ}) with 2N = 32 and
    // τ = 0.2, and at least 0.
    let bound = (1.0 + 30.0 * (2.0f64 / 0.2).exp()).ln();
    for loss in &report.losses {
        assert!(loss.is_finite() && *loss > 0.0 && *loss <= bound, "{loss}");
    }
}
