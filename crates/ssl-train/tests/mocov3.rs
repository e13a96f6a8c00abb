//! MoCo v3: one step equals 2τ [ctr(q₁, k₂) + ctr(q₂, k₁)] written out by hand on a replica of
//! its networks (at step 0 the momentum encoder equals the query encoder), and its keys come
//! from the momentum encoder's weights.

mod common;
use common::{add_in_place, tiny};

use std::collections::HashMap;

use ssl_loss::l2_normalize;
use ssl_testutil::seed_global_rng;
use ssl_train::config::MethodConfig;
use ssl_train::{Batch, Encoder, Method, MocoV3, StepContext};
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

const CTX: StepContext = StepContext { step: 0, total: 10, epoch: 0 };

/// Two random views of 6 images (the caller holds the generator's lock).
fn views() -> Vec<Tensor> {
    (0..2).map(|_| Tensor::rand([6, 1, 14, 14], (Kind::Float, Device::Cpu))).collect()
}

/// InfoNCE of unit rows against the batch's keys, by loops in f64:
/// 1/N Σᵢ −log exp(qᵢ·kᵢ/τ) / Σⱼ exp(qᵢ·kⱼ/τ).
fn ctr(q: &Tensor, k: &Tensor, tau: f64) -> f64 {
    let (q, k) = (
        l2_normalize(q, 1e-12).to_kind(Kind::Double),
        l2_normalize(k, 1e-12).to_kind(Kind::Double),
    );
    let s = q.matmul(&k.tr());
    let n = s.size()[0];
    let mut total = 0.0;
    for i in 0..n {
        let denom: f64 = (0..n).map(|j| (s.double_value(&[i, j]) / tau).exp()).sum();
        total += -(s.double_value(&[i, i]) / tau) + denom.ln();
    }
    total / n as f64
}

fn build(seed: i64) -> (VarStore, MocoV3, f64) {
    let cfg = tiny("mocov3-fmnist.yaml", &[]);
    let MethodConfig::Mocov3(c) = cfg.method else { panic!("mocov3") };
    tch::manual_seed(seed);
    let vs = VarStore::new(Device::Cpu);
    let m = MocoV3::new(&vs, &cfg, &c).unwrap();
    (vs, m, c.temperature)
}

#[test]
fn a_step_is_the_symmetric_scaled_infonce_written_out_by_hand() {
    let _rng = seed_global_rng(4); // held while the method and its replica draw their weights
    let x = views();
    let (_vs, mut v3, tau) = build(7);
    let got = v3.step(&Batch::unlabelled(&x), &CTX).unwrap().loss.double_value(&[]);

    // The replica: the same builds in the same order from the same seed.
    let cfg = tiny("mocov3-fmnist.yaml", &[]);
    let MethodConfig::Mocov3(c) = cfg.method else { panic!("mocov3") };
    tch::manual_seed(7);
    let vs = VarStore::new(Device::Cpu);
    let head = c.projector.projection();
    let encoder = Encoder::new(&vs.root(), &cfg.model.backbone, &head).unwrap();
    let predictor = c.predictor.build(&(vs.root() / "predictor"), head.output_dim).unwrap();
    let z: Vec<Tensor> = x.iter().map(|v| encoder.forward_t(v, true)).collect();
    let q: Vec<Tensor> = z.iter().map(|z| predictor.forward_t(z, true)).collect();
    // Keys: the momentum encoder starts as a copy, and sees each view's batch alone.
    let want = 2.0 * tau * (ctr(&q[0], &z[1], tau) + ctr(&q[1], &z[0], tau));
    assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    // 0 < L and each ctr ≤ log N + 2/τ (unit rows bound every logit by 1/τ).
    assert!(got > 0.0 && got < 2.0 * 2.0 * tau * (6f64.ln() + 2.0 / tau), "{got}");
}

#[test]
fn its_keys_come_from_the_momentum_encoders_weights() {
    let _rng = seed_global_rng(4);
    let x = views();
    let (_vs, mut v3, _) = build(9);
    let loss =
        |m: &mut MocoV3| m.step(&Batch::unlabelled(&x), &CTX).unwrap().loss.double_value(&[]);
    let base = loss(&mut v3);
    let vars: HashMap<String, Tensor> = v3.target().var_store().variables();
    add_in_place(&vars, "backbone.bn1.running_mean", 3.0);
    assert_eq!(loss(&mut v3), base, "train-mode BatchNorm ignores running statistics");
    add_in_place(&vars, "head.layers.0.weight", 0.5);
    let moved = loss(&mut v3);
    assert!((moved - base).abs() > 1e-4, "the key encoder makes the keys: {moved} vs {base}");
}
