//! DenseCL: a step is (1 − λ) L_global + λ L_dense, the dense term written out by hand on a
//! replica (correspondence by the argmax of backbone-feature cosines, InfoNCE against the dense
//! queue); the key encoder's weights, not the query encoder's, make the keys and the matching.

mod common;
use common::{add_in_place, tiny};

use std::collections::HashMap;

use ssl_loss::l2_normalize;
use ssl_moco::FeatureQueue;
use ssl_testutil::seed_global_rng;
use ssl_train::config::MethodConfig;
use ssl_train::{Batch, DenseCl, DenseClConfig, DenseEncoder, Method, StepContext};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const CTX: StepContext = StepContext { step: 0, total: 10, epoch: 0 };

fn config() -> (ssl_train::Config, DenseClConfig) {
    config_with(&[])
}

/// One key sub-batch (no shuffle draws), a queue of 8, so a replica can follow, the dense
/// term from step 0, and `extra`.
fn config_with(extra: &[&str]) -> (ssl_train::Config, DenseClConfig) {
    let mut overrides =
        vec!["method.key_bn_splits=1", "method.queue_size=8", "method.dense_warmup_steps=0"];
    overrides.extend_from_slice(extra);
    let cfg = tiny("densecl-fmnist.yaml", &overrides);
    let MethodConfig::Densecl(c) = cfg.method else { panic!("densecl") };
    (cfg, c)
}

/// Two random views of 4 images (the caller holds the generator's lock).
fn views() -> Vec<Tensor> {
    (0..2).map(|_| Tensor::rand([4, 1, 14, 14], (Kind::Float, Device::Cpu))).collect()
}

#[test]
fn a_step_mixes_the_global_loss_and_the_dense_loss_written_out_by_hand() {
    let _rng = seed_global_rng(1);
    let x = views();
    // The dense queue's own K; τ = 1, where every negative counts (at 0.07 the loss is ~1e-4).
    let (cfg, c) = config_with(&["method.dense_queue_size=5", "method.temperature=1.0"]);
    tch::manual_seed(2);
    let vs = VarStore::new(Device::Cpu);
    let mut densecl = DenseCl::new(&vs, &cfg, &c).unwrap();
    let out = densecl.step(&Batch::unlabelled(&x), &CTX).unwrap();
    let log = |k: &str| out.logs.iter().find(|(n, _)| *n == k).unwrap().1;
    let (lg, ld, l) = (log("loss_global"), log("loss_dense"), out.loss.double_value(&[]));
    let lambda = c.dense_weight;
    assert!((l - ((1.0 - lambda) * lg + lambda * ld)).abs() < 1e-5, "{l} vs {lg}, {ld}");

    // Replica: online encoder, the target's own draws (then a copy of the online weights), the
    // global queue's and the dense queue's random starts, in DenseCl::new's order.
    tch::manual_seed(2);
    let vs2 = VarStore::new(Device::Cpu);
    let online = DenseEncoder::new(&vs2.root(), &cfg.model.backbone, &c).unwrap();
    let vs3 = VarStore::new(Device::Cpu);
    let _target_draws = DenseEncoder::new(&vs3.root(), &cfg.model.backbone, &c).unwrap();
    let d = c.head.output_dim;
    let _global_queue = FeatureQueue::new(8, d, Kind::Float, Device::Cpu).unwrap();
    let dense_queue = FeatureQueue::new(5, d, Kind::Float, Device::Cpu).unwrap();
    let q = online.forward_all(&x[0], true);
    let k = online.forward_all(&x[1], true); // the target equals the online network at step 0
    let unit = |t: &Tensor| l2_normalize(t, 1e-12).to_kind(Kind::Double);
    let (fq, fk) = (unit(&q.feature_map.transpose(1, 2)), unit(&k.feature_map.transpose(1, 2))); // [N, S, C]
    let (r, t) = (unit(&q.dense.transpose(1, 2)), unit(&k.dense.transpose(1, 2))); // [N, S, D]
    let neg = unit(&dense_queue.negatives()); // [K, D]
    let (n, s) = (fq.size()[0], fq.size()[1]);
    let tau = c.temperature;
    let mut want = 0.0;
    for b in 0..n {
        for i in 0..s {
            let cos =
                |j: i64| (fq.get(b).get(i) * fk.get(b).get(j)).sum(Kind::Double).double_value(&[]);
            let j = (0..s).max_by(|&a, &bb| cos(a).total_cmp(&cos(bb))).unwrap();
            let ri = r.get(b).get(i);
            let pos = (&ri * t.get(b).get(j)).sum(Kind::Double).double_value(&[]) / tau;
            let negs: f64 = (0..5)
                .map(|m| ((&ri * neg.get(m)).sum(Kind::Double).double_value(&[]) / tau).exp())
                .sum();
            want += -pos + (pos.exp() + negs).ln();
        }
    }
    want /= (n * s) as f64;
    assert!((ld - want).abs() < 1e-5 * want, "dense {ld} vs {want}");
}

#[test]
fn the_key_encoder_makes_the_keys_and_the_matching() {
    let _rng = seed_global_rng(3);
    let x = views();
    let (cfg, c) = config();
    let vs = VarStore::new(Device::Cpu);
    let mut densecl = DenseCl::new(&vs, &cfg, &c).unwrap();
    let dense = |m: &mut DenseCl| {
        let out = m.step(&Batch::unlabelled(&x), &CTX).unwrap();
        out.logs.iter().find(|(n, _)| *n == "loss_dense").unwrap().1
    };
    let base = dense(&mut densecl);
    let vars: HashMap<String, Tensor> = densecl.key_encoder().var_store().variables();
    add_in_place(&vars, "backbone.bn1.running_mean", 3.0);
    assert_eq!(dense(&mut densecl), base, "train-mode BatchNorm ignores running statistics");
    add_in_place(&vars, "dense.layers.0.weight", 0.5);
    let moved = dense(&mut densecl);
    assert!((moved - base).abs() > 1e-4, "the key encoder's dense head: {moved} vs {base}");
}

#[test]
fn the_dense_term_joins_after_its_warm_up() {
    // λ = 0 while step < dense_warmup_steps: the loss is the global term alone, then the mix.
    let _rng = seed_global_rng(4);
    let x = views();
    let (cfg, c) = config();
    let c = DenseClConfig { dense_warmup_steps: 1, temperature: 1.0, ..c }; // losses far from 0
    let vs = VarStore::new(Device::Cpu);
    let mut densecl = DenseCl::new(&vs, &cfg, &c).unwrap();
    for step in 0..2 {
        let ctx = StepContext { step, ..CTX };
        let out = tch::no_grad(|| densecl.step(&Batch::unlabelled(&x), &ctx)).unwrap();
        let log = |k: &str| out.logs.iter().find(|(n, _)| *n == k).unwrap().1;
        let (lg, ld, l) = (log("loss_global"), log("loss_dense"), out.loss.double_value(&[]));
        let want = if step == 0 { lg } else { (1.0 - c.dense_weight) * lg + c.dense_weight * ld };
        assert!((l - want).abs() < 1e-5, "step {step}: {l} vs {want} ({lg}, {ld})");
        assert!((lg - ld).abs() > 1e-3, "the terms must differ to tell them apart: {lg} vs {ld}");
    }
}

#[test]
fn an_empty_dense_queue_is_an_error_naming_its_field() {
    let (_, c) = config();
    let err = DenseClConfig { dense_queue_size: Some(0), ..c }.validate().unwrap_err();
    assert!(err.to_string().contains("method.dense_queue_size"), "{err}");
}
