//! A budgeted run fixes `train.steps` after timing its warm-up; replaying that number of steps
//! gives bit-identical losses, schedule included. Also: a validation run never opens the test
//! files.

use std::path::{Path, PathBuf};

use ssl_testutil::{seed_global_rng, ScratchDir};
use ssl_train::config::{self, Length};
use ssl_train::evaluate::EvalData;
use ssl_train::{held_out, Config};

fn data_dir() -> String {
    std::env::var("SSL_RS_DATA_DIR")
        .expect("SSL_RS_DATA_DIR is unset: run `cargo xtask setup` first (it installs the data)")
}

fn tiny(extra: &[&str]) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/simclr-fmnist.yaml");
    let mut o: Vec<String> = vec![
        format!("data.dir={}", data_dir()),
        "data.batch_size=16".into(),
        "model.backbone.width=4".into(),
        "method.projection.hidden_dim=8".into(),
        "method.projection.output_dim=8".into(),
        "eval.monitor_bank=0".into(),
        // 12 warm-up steps of the 3,750 an epoch has at batch 16.
        "optim.warmup_epochs=0.0032".into(),
        "train.max_steps=24".into(),
        // The main job's LARS lr 1.6 stalls this width-4 network inside oneDNN's AVX2 weight
        // gradient after about ten steps (seen on an AMD EPYC without AVX-512).
        "optim.lr=0.3".into(),
    ];
    o.extend(extra.iter().map(|s| s.to_string()));
    config::load(&path, &o).unwrap()
}

#[test]
fn a_replay_of_the_resolved_steps_gives_the_same_losses() {
    let _rng = seed_global_rng(0); // the lock; `train` seeds again from `seed`
                                   // 12 s of budget at a few milliseconds a step: several hundred steps, cut at 24 so that
                                   // 12 steps of the cosine (whose learning rates depend on the chosen length) are compared.
    let budgeted = tiny(&["train.budget_minutes=0.2"]);
    let first = ssl_train::train(&budgeted, None).unwrap();
    let Length::Steps(steps) = first.config.train.length() else {
        panic!("a budgeted run resolves to steps: {:?}", first.config.train)
    };
    let report = first.budget.clone().expect("budgeted runs report how they chose");
    assert_eq!((report.steps, report.decided_at_step), (steps, 12));
    assert!(steps > 24, "12 s fit only {steps} steps of a width-4 network");
    assert!(report.step_seconds > 0.0 && report.step_seconds * steps as f64 <= 12.0);
    assert_eq!(first.losses.len(), 24);

    let replay = tiny(&["train.budget_minutes=null", &format!("train.steps={steps}")]);
    let second = ssl_train::train(&replay, None).unwrap();
    assert_eq!(second.losses, first.losses, "bit-identical losses");
    assert!(second.budget.is_none());
    assert_eq!(second.config, first.config, "the replay's resolved config is the budgeted one's");

    // A different length changes the cosine, so the losses after the warm-up differ: the
    // comparison above can tell the schedules apart.
    // Loss i is computed before update i: the first 14 depend on the warm-up's 12 learning
    // rates and the cosine's first (the peak), the rest on the length. A 30-step schedule
    // decays over 18 steps, so its later losses must differ from the long schedule's.
    let other = tiny(&["train.budget_minutes=null", "train.steps=30"]);
    let third = ssl_train::train(&other, None).unwrap();
    assert_eq!(third.losses[..14], first.losses[..14], "the warm-up does not depend on the length");
    assert_ne!(third.losses[14..], first.losses[14..]);
}

#[test]
fn a_budget_the_warm_up_cannot_be_timed_in_is_an_error_naming_the_key() {
    let _rng = seed_global_rng(0); // the lock; `train` seeds again from `seed`
    let cfg = tiny(&["train.budget_minutes=1", "optim.warmup_epochs=0.0001"]);
    let err = ssl_train::train(&cfg, None).unwrap_err().to_string();
    assert!(err.contains("optim.warmup_epochs") && err.contains("8 steps"), "{err}");
}

#[test]
fn validation_holds_out_a_tenth_and_never_opens_the_test_files() {
    assert_eq!(held_out(&tiny(&["eval.validation=true"]), 60_000), 6_000);
    assert_eq!(held_out(&tiny(&[]), 60_000), 0);
    // A data directory with the training files only.
    let dir = ScratchDir::new("train-only");
    for f in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"] {
        std::fs::copy(PathBuf::from(data_dir()).join(f), dir.join(f)).unwrap();
    }
    let dir_set = format!("data.dir={}", dir.display());
    let data = EvalData::load(&tiny(&[&dir_set, "eval.validation=true"])).unwrap();
    assert_eq!(data.sizes(), (54_000, 6_000));
    let err = EvalData::load(&tiny(&[&dir_set])).unwrap_err().to_string();
    assert!(err.contains("t10k-images-idx3-ubyte.gz"), "{err}");
}
