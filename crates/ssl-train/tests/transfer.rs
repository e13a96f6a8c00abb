//! Transfer to scikit-learn's digits: the file `cargo xtask setup` fetched reads as 1,797
//! labelled images, its fixed split is two thirds and one third, and raw pixels classify them as
//! well as the literature says (nearest neighbours on the 64 pixels: about 97 %).

mod common;
use common::tiny;

use ssl_data::Digits;
use ssl_testutil::seed_global_rng;
use ssl_train::build_model;
use ssl_train::transfer::TransferData;
use tch::Device;

fn digits() -> Digits {
    let path = std::env::var("SSL_RS_DIGITS")
        .expect("SSL_RS_DIGITS is unset: run `cargo xtask setup` first (it fetches the digits)");
    Digits::read(path).unwrap()
}

#[test]
fn the_digits_split_two_thirds_and_raw_pixels_classify_them() {
    let d = digits();
    assert_eq!(d.len(), 1797);
    let classes: Vec<i64> = Vec::try_from(d.labels_tensor()).unwrap();
    for c in 0..10 {
        let n = classes.iter().filter(|&&v| v == c).count();
        assert!((170..=190).contains(&n), "class {c}: {n} images (the set is balanced)");
    }
    let data = TransferData::new(&d);
    assert_eq!(data.sizes(), (1198, 599));
    let cfg = tiny("simclr-fmnist.yaml", &[]);
    let raw = data.score_pixels(&cfg);
    assert!(raw.knn_top1 > 0.9 && raw.linear_top1 > 0.9, "{raw:?}");
}

#[test]
fn a_network_is_scored_on_the_upsampled_digits() {
    let _rng = seed_global_rng(0);
    let cfg = tiny("simclr-fmnist.yaml", &[]);
    let (_vs, model) = build_model(&cfg, Device::Cpu).unwrap();
    let s =
        TransferData::new(&digits()).score_network(model.backbone(), &cfg, Device::Cpu).unwrap();
    // Even random convolutional features separate digits far above chance (10 %).
    assert!(s.knn_top1 > 0.5 && s.linear_top1 > 0.5, "{s:?}");
}
