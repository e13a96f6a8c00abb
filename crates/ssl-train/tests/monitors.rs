//! The monitors beside pre-training: the online linear probe learns from detached features
//! without changing the encoder, and every epoch logs the probe and the collapse monitors.

use std::path::Path;

use ssl_testutil::seed_global_rng;
use ssl_train::{config, Config};
use tch::{Device, Kind, Tensor};

fn tiny(file: &str, probe: bool) -> Config {
    let dir = std::env::var("SSL_RS_DATA_DIR")
        .expect("SSL_RS_DATA_DIR is unset: run `cargo xtask setup` first (it installs the data)");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs").join(file);
    let o: Vec<String> = vec![
        format!("data.dir={dir}"),
        "data.batch_size=16".into(),
        "model.backbone.width=4".into(),
        "train.budget_minutes=null".into(),
        "train.steps=4".into(),
        "eval.monitor_bank=300".into(),
        "eval.monitor_queries=100".into(),
        format!("eval.online_probe={probe}"),
    ];
    config::load(&path, &o).unwrap()
}

#[test]
fn the_online_probe_leaves_the_encoder_bit_for_bit_as_it_was() {
    // MoCo draws its key shuffles from libtorch's generator, so a probe that drew from it, or
    // sent a gradient into the encoder, would change the losses.
    let run = |probe| {
        let _rng = seed_global_rng(0); // `train` seeds again from `seed`
        ssl_train::train(&tiny("mocov2-fmnist.yaml", probe), None).unwrap()
    };
    let (with, without) = (run(true), run(false));
    assert_eq!(with.losses, without.losses);
    let x = Tensor::rand([3, 1, 28, 28], (Kind::Float, Device::Cpu));
    let (a, b) =
        (with.model.backbone().forward_t(&x, false), without.model.backbone().forward_t(&x, false));
    assert!(a.equal(&b), "the same backbone weights");
    let (e, f) = (&with.epochs[0], &without.epochs[0]);
    let acc = e.online_linear.expect("the probe scored the monitor's queries");
    assert!((0.0..=1.0).contains(&acc));
    assert_eq!(f.online_linear, None);
    // The collapse monitors ran on the epoch's embeddings: a std in (0, 1] and a rank ≥ 1.
    let (std, rank) = (e.embedding_std.unwrap(), e.rankme.unwrap());
    assert!(std > 0.0 && std <= 1.0 && rank >= 1.0, "std {std}, RankMe {rank}");
    assert_eq!((e.embedding_std, e.rankme), (f.embedding_std, f.rankme));
}
