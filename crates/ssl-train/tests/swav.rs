//! SwAV: a step is the swapped prediction written out by hand on a replica's scores; the
//! prototypes get no gradient while frozen and move after; the queue fills from its start
//! epoch and joins the codes once full.

mod common;
use common::tiny;

use ssl_loss::{l2_normalize, sinkhorn};
use ssl_testutil::seed_global_rng;
use ssl_train::config::MethodConfig;
use ssl_train::{Batch, Method, OptimKind, Optimizer, StepContext, Swav};
use tch::nn::{self, ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

/// The tiny SwAV config with `extra`, and its method's settings.
fn config(extra: &[&str]) -> (ssl_train::Config, ssl_train::SwavConfig) {
    let cfg = tiny("swav-fmnist.yaml", extra);
    let MethodConfig::Swav(c) = &cfg.method else { panic!("swav") };
    let c = **c;
    (cfg, c)
}

/// Random views of 6 images: `n_global` of 14 px, then `n_local` of 8 px.
fn views(n_global: usize, n_local: usize) -> Vec<Tensor> {
    let size = |v: usize| if v < n_global { 14 } else { 8 };
    (0..n_global + n_local)
        .map(|v| Tensor::rand([6, 1, size(v), size(v)], (Kind::Float, Device::Cpu)))
        .collect()
}

fn ctx(step: u64, epoch: u64) -> StepContext {
    StepContext { step, total: 100, epoch }
}

#[test]
fn a_step_is_the_swapped_prediction_on_sinkhorn_codes_by_hand() {
    let _rng = seed_global_rng(1);
    // Small crops pinned on: the multi-crop form, whatever the CPU YAML's count (0).
    let (cfg, c) = config(&["method.queue_size=0", "method.n_local=2"]);
    let x = views(c.n_global, c.n_local);
    tch::manual_seed(2);
    let vs = VarStore::new(Device::Cpu);
    let mut swav = Swav::new(&vs, &cfg, &c).unwrap();
    let got = swav.step(&Batch::unlabelled(&x), &ctx(0, 0)).unwrap().loss.double_value(&[]);

    // The replica: the same variables drawn in the same order from the same seed.
    tch::manual_seed(2);
    let vs2 = VarStore::new(Device::Cpu);
    let root = vs2.root();
    let backbone = cfg.model.backbone.build(&(&root / "backbone")).unwrap();
    let head = c.projector.build(&(&root / "head"), backbone.feature_dim()).unwrap();
    let k = c.num_prototypes;
    let protos =
        root.var("prototypes", &[k, c.projector.output_dim], nn::init::DEFAULT_KAIMING_UNIFORM);
    let protos = l2_normalize(&protos, 1e-12);
    let g = backbone.forward_t(&Tensor::cat(&x[..c.n_global], 0), true);
    let l = backbone.forward_t(&Tensor::cat(&x[c.n_global..], 0), true);
    let z = l2_normalize(&head.forward_t(&Tensor::cat(&[g, l], 0), true), 1e-12);
    let scores = z.matmul(&protos.tr()).to_kind(Kind::Double); // [V·6, K]
    let v = (c.n_global + c.n_local) as i64;
    let tau = c.loss.temperature;
    let mut want = 0.0;
    for s in 0..c.n_global as i64 {
        let q = sinkhorn(&scores.narrow(0, s * 6, 6), c.loss.epsilon, c.loss.sinkhorn_iterations);
        for other in (0..v).filter(|&o| o != s) {
            let mut ce = 0.0;
            for b in 0..6 {
                let row: Vec<f64> =
                    (0..k).map(|j| scores.double_value(&[other * 6 + b, j]) / tau).collect();
                let lse = row.iter().map(|r| r.exp()).sum::<f64>().ln();
                ce -=
                    (0..k).map(|j| q.double_value(&[b, j]) * (row[j as usize] - lse)).sum::<f64>();
            }
            want += ce / 6.0 / (v - 1) as f64;
        }
    }
    want /= c.n_global as f64;
    assert!((got - want).abs() < 1e-4, "{got} vs {want}");
}

#[test]
fn the_prototypes_get_no_gradient_while_frozen_and_move_after() {
    let _rng = seed_global_rng(3);
    let (cfg, c) = config(&["method.freeze_prototypes_steps=1", "method.queue_size=0"]);
    let x = views(c.n_global, c.n_local);
    let vs = VarStore::new(Device::Cpu);
    let mut swav = Swav::new(&vs, &cfg, &c).unwrap();
    // A large weight decay, so that any update of the prototypes would show.
    let mut opt = Optimizer::new(&vs, OptimKind::Sgd, 0.9, 0.1, 0.02);
    let before = swav.prototypes().copy();
    let backbone_before = vs.variables()["backbone.conv1.weight"].copy();
    let out = swav.step(&Batch::unlabelled(&x), &ctx(0, 0)).unwrap();
    opt.backward_step(&out.loss, 0.5);
    // Up to the step's re-normalisation of the (already unit) rows.
    let drift = (swav.prototypes() - &before).abs().max().double_value(&[]);
    assert!(drift < 1e-6, "frozen: neither gradient nor weight decay ({drift})");
    assert!(!vs.variables()["backbone.conv1.weight"].equal(&backbone_before), "the rest trains");
    let out = swav.step(&Batch::unlabelled(&x), &ctx(1, 0)).unwrap();
    opt.backward_step(&out.loss, 0.5);
    let moved = (swav.prototypes() - &before).abs().max().double_value(&[]);
    assert!(moved > 1e-6, "after the freeze the prototypes learn: {moved}");
}

#[test]
fn the_queue_fills_from_its_start_epoch_and_joins_the_codes_once_full() {
    let _rng = seed_global_rng(5);
    // 12 features per global crop: two steps of 6 fill it.
    let (cfg, c) = config(&["method.queue_size=12", "method.queue_start_epoch=1"]);
    let x = views(c.n_global, c.n_local);
    let vs = VarStore::new(Device::Cpu);
    let mut swav = Swav::new(&vs, &cfg, &c).unwrap();
    let mut in_use = Vec::new();
    for (step, epoch) in [(0, 0), (1, 0), (2, 0), (3, 1), (4, 1), (5, 1)] {
        let out = swav.step(&Batch::unlabelled(&x), &ctx(step, epoch)).unwrap();
        in_use.push(out.logs.iter().find(|(k, _)| *k == "queue_in_use").unwrap().1);
        swav.after_step(&ctx(step, epoch)).unwrap();
    }
    // Epoch 0 enqueues nothing; epoch 1 fills it in two steps, and the third step uses it.
    assert_eq!(in_use, [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
}
