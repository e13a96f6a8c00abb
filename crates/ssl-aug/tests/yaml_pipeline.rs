//! Pipelines written in YAML: every op parses, builds and runs, in the written order. (The
//! `serde` feature is on for this crate's tests through its dev-dependency on itself.)

use ssl_aug::{aug_rng, build_pipeline, Aug, OpConfig, ViewPair};
use tch::{Device, Kind, Tensor};

const PIPELINE: &str = "
- to_float: {}
- random_resized_crop: {size: [16, 16], scale: [0.2, 1.0], antialias: true}
- horizontal_flip: {p: 0.5}
- vertical_flip: {p: 0.1}
- color_jitter: {brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0.8}
- grayscale: {p: 0.2}
- gaussian_blur: {kernel_size: 3, sigma: [0.1, 2.0], p: 0.5}
- solarize: {threshold: 0.5, p: 0.2}
- equalize: {p: 0.3}
- normalize: {mean: [0.5], std: [0.25]}
";

#[test]
fn a_yaml_pipeline_of_every_op_builds_and_runs() {
    let ops: Vec<OpConfig> = serde_saphyr::from_str(PIPELINE).unwrap();
    assert_eq!(ops.len(), 10);
    assert!(matches!(ops[1], OpConfig::RandomResizedCrop(c) if c.antialias));
    assert!(matches!(ops[4], OpConfig::ColorJitter(c) if c.hue == 0.1));
    let pipeline = build_pipeline(&ops).unwrap();
    let x = Tensor::randint(256, [4, 3, 24, 24], (Kind::Uint8, Device::Cpu));
    let y = pipeline.forward(&x, &mut aug_rng(0, &[]));
    assert_eq!((y.size(), y.kind()), (vec![4, 3, 16, 16], Kind::Float));
    // The last op maps [0, 1] to [−2, 2]: the others left the values in [0, 1].
    assert!(y.min().double_value(&[]) >= -2.0 && y.max().double_value(&[]) <= 2.0);
    assert!(y.equal(&pipeline.forward(&x, &mut aug_rng(0, &[]))));
}

#[test]
fn ops_run_in_the_written_order() {
    // A constant image of 204 (0.8 after to_float). Normalise (mean 0.5, std 0.25) then
    // solarise (threshold 0.5, p 1): 0.8 → 1.2 → 1 − 1.2 = −0.2. The other order:
    // 0.8 → 1 − 0.8 = 0.2 → (0.2 − 0.5) / 0.25 = −1.2.
    let norm = "- normalize: {mean: [0.5], std: [0.25]}\n";
    let sol = "- solarize: {threshold: 0.5, p: 1.0}\n";
    let x = Tensor::full([2, 1, 3, 3], 204, (Kind::Uint8, Device::Cpu));
    for (text, want) in [
        (format!("- to_float: {{}}\n{norm}{sol}"), -0.2),
        (format!("- to_float: {{}}\n{sol}{norm}"), -1.2),
    ] {
        let ops: Vec<OpConfig> = serde_saphyr::from_str(&text).unwrap();
        let y = build_pipeline(&ops).unwrap().forward(&x, &mut aug_rng(0, &[]));
        let err = (y - want).abs().max().double_value(&[]);
        assert!(err < 1e-6, "{text}: off by {err}");
    }
}

#[test]
fn an_unknown_op_or_a_bad_field_is_an_error_naming_it() {
    let err = serde_saphyr::from_str::<Vec<OpConfig>>("- sharpen: {p: 0.5}").unwrap_err();
    assert!(err.to_string().contains("sharpen"), "{err}");
    let ops: Vec<OpConfig> =
        serde_saphyr::from_str("- solarize: {threshold: 2.0, p: 0.2}").unwrap();
    let err = build_pipeline(&ops).unwrap_err().to_string();
    assert!(err.contains("solarize.threshold"), "{err}");
}

#[test]
fn a_preset_round_trips_through_yaml() {
    let byol = ViewPair::byol(32);
    let text = serde_saphyr::to_string(&byol).unwrap();
    let back: ViewPair = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(back, byol);
}
