//! Fine-tuning: the labelled subset is class-balanced and reproducible, and a tiny network
//! fine-tuned on 1 % of the labels learns (its held-out top-1 is far above chance).

mod common;
use common::tiny;

use ssl_testutil::seed_global_rng;
use ssl_train::build_model;
use ssl_train::evaluate::EvalData;
use ssl_train::finetune::{finetune, label_subset, FinetuneSettings};
use tch::{Device, Tensor};

#[test]
fn the_label_subset_takes_the_same_share_of_every_class_and_is_reproducible() {
    // 3 classes of 10, 10 and 40 images, partly interleaved.
    let labels: Vec<i64> = (0..60).map(|i| if i < 30 { i % 3 } else { 2 }).collect();
    let counts =
        |y: &[i64]| (0..3).map(|c| y.iter().filter(|&&v| v == c).count()).collect::<Vec<_>>();
    let y = Tensor::from_slice(&labels);
    assert_eq!(counts(&labels), [10, 10, 40]);
    let idx = label_subset(&y, 3, 0.1, 7).unwrap();
    let picked: Vec<i64> = Vec::try_from(&y.index_select(0, &idx)).unwrap();
    assert_eq!(counts(&picked), [1, 1, 4], "round(0.1 · n_c) of each class");
    let again: Vec<i64> = Vec::try_from(&label_subset(&y, 3, 0.1, 7).unwrap()).unwrap();
    assert_eq!(Vec::<i64>::try_from(&idx).unwrap(), again, "the same seed, the same subset");
    let other: Vec<i64> = Vec::try_from(&label_subset(&y, 3, 0.5, 8).unwrap()).unwrap();
    assert_eq!(other.len(), 5 + 5 + 20);
    assert!(other.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
    assert_eq!(label_subset(&y, 3, 1.0, 0).unwrap().size(), [60]);
    assert!(label_subset(&y, 3, 0.0, 0).unwrap_err().to_string().contains("label_fraction"));
}

#[test]
fn a_network_fine_tuned_on_one_percent_of_the_labels_learns() {
    let _rng = seed_global_rng(0);
    let cfg = tiny("simclr-fmnist.yaml", &["eval.validation=true"]);
    let data = EvalData::load(&cfg).unwrap();
    let load = || build_model(&cfg, Device::Cpu); // random init: learning shows all the same
    let settings = FinetuneSettings {
        epochs: 10,
        batch_size: 64,
        label_fraction: 0.01,
        lrs: vec![0.1],
        ..Default::default()
    };
    let (test_x, test_y) = data.test_split();
    let test = (&test_x.narrow(0, 0, 1000), &test_y.narrow(0, 0, 1000));
    let report = finetune(&load, data.train_split(), test, 10, &settings, &cfg).unwrap();
    assert_eq!(report.labelled, 540, "1 % of 54,000 training images, class by class");
    assert_eq!(report.lr, 0.1);
    assert!(report.candidates.is_empty(), "one rate: nothing chosen, no held-out fit");
    // Chance is 10 %; a width-4 network on 540 labels for 90 steps gets well past it.
    assert!(report.test_top1 > 0.3, "{report:?}");
}
