//! `examples/custom_method.rs` (a method defined outside the crate from the public parts)
//! trains three steps on Fashion-MNIST and is scored on held-out training images.

#[allow(dead_code)]
#[path = "../examples/custom_method.rs"]
mod custom_method;

#[test]
fn the_custom_method_example_trains_and_evaluates() {
    let _rng = ssl_testutil::seed_global_rng(0); // `train` seeds again from `seed`
    let tiny: Vec<String> = [
        "data.batch_size=16",
        "model.backbone.width=4",
        "eval.monitor_bank=0",
        "eval.baselines=false",
        "eval.linear.epochs=1",
    ]
    .map(String::from)
    .into();
    let (losses, scores) = custom_method::run(3, &tiny).unwrap();
    assert_eq!(losses.len(), 3);
    // NT-Xent over 2N = 32 views is at most ln(1 + 30 e^{2/τ}); InfoNCE over 1,025 candidates
    // at most ln(1 + 1024 e^{2/τ}); τ = 0.2 for both.
    let bound = (1.0 + 30.0 * 10f64.exp()).ln() + (1.0 + 1024.0 * 10f64.exp()).ln();
    assert!(losses.iter().all(|l| l.is_finite() && *l > 0.0 && *l <= bound), "{losses:?}");
    // Ten classes: chance is 10 %; even a barely trained width-4 network's features do far better.
    assert!(scores.knn_top1 > 0.3 && scores.knn_top1 <= 1.0, "{}", scores.knn_top1);
    assert!(scores.linear_top1 > 0.3 && scores.linear_top1 <= 1.0, "{}", scores.linear_top1);
}
