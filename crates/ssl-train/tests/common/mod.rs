//! Helpers the integration tests share: the shipped configs, shrunk to a tiny model.

use std::path::{Path, PathBuf};

use std::collections::HashMap;

use ssl_train::config;
use ssl_train::Config;
use tch::Tensor;

/// The shipped configs' directory.
#[allow(dead_code)] // not every test file reads the directory itself
pub(crate) fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs")
}

/// A shipped config, shrunk: width-4 backbone, batch 16, three steps, no monitor (its depth,
/// heads, views and optimiser as shipped), then `extra` overrides.
pub(crate) fn tiny(file: &str, extra: &[&str]) -> Config {
    let dir = std::env::var("SSL_RS_DATA_DIR")
        .expect("SSL_RS_DATA_DIR is unset: run `cargo xtask setup` first (it installs the data)");
    let mut o: Vec<String> = vec![
        format!("data.dir={dir}"),
        "data.batch_size=16".into(),
        "model.backbone.width=4".into(),
        "train.epochs=null".into(),
        "train.budget_minutes=null".into(),
        "train.steps=3".into(),
        "eval.monitor_bank=0".into(),
    ];
    o.extend(extra.iter().map(|s| s.to_string()));
    config::load(&configs().join(file), &o).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Adds `v` to the variable `name` of `vars` in place, outside autograd.
#[allow(dead_code)] // not every test file perturbs variables
pub(crate) fn add_in_place(vars: &HashMap<String, Tensor>, name: &str, v: f64) {
    tch::no_grad(|| {
        let mut t = vars[name].shallow_clone();
        t += v;
    });
}
