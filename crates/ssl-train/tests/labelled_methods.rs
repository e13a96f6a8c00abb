//! The two methods that train on labels: SupCon with every label distinct is SimCLR's NT-Xent
//! (Khosla et al. 2020, Sec. 3.2); the supervised step is the cross-entropy of a replica's
//! logits written out by hand; without labels both refuse to step.

mod common;
use common::tiny;

use ssl_testutil::seed_global_rng;
use ssl_train::config::MethodConfig;
use ssl_train::{Batch, Method, SimClr, StepContext, SupConMethod, Supervised};
use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};

const CTX: StepContext = StepContext { step: 0, total: 3, epoch: 0 };

/// Two random views of 6 images (the caller holds the generator's lock).
fn views() -> Vec<Tensor> {
    (0..2).map(|_| Tensor::rand([6, 1, 14, 14], (Kind::Float, Device::Cpu))).collect()
}

#[test]
fn supcon_with_distinct_labels_is_simclrs_nt_xent() {
    let _rng = seed_global_rng(1);
    let x = views();
    let cfg = tiny("supcon-fmnist.yaml", &[]);
    let MethodConfig::Supcon(c) = cfg.method else { panic!("supcon") };
    tch::manual_seed(2);
    let vs = VarStore::new(Device::Cpu);
    let mut supcon = SupConMethod::new(&vs, &cfg, &c).unwrap();
    let y = Tensor::arange(6, (Kind::Int64, Device::Cpu));
    let got = supcon.step(&Batch { views: &x, labels: Some(&y) }, &CTX).unwrap().loss;

    let t = c.loss.temperature.to_string();
    let simclr_cfg = tiny("simclr-fmnist.yaml", &[&format!("method.loss.temperature={t}")]);
    let MethodConfig::Simclr(s) = simclr_cfg.method else { panic!("simclr") };
    assert_eq!(s.projection, c.projection, "the same head, so the same weights from one seed");
    tch::manual_seed(2);
    let vs2 = VarStore::new(Device::Cpu);
    let mut simclr = SimClr::new(&vs2.root(), &simclr_cfg, &s).unwrap();
    let want = simclr.step(&Batch::unlabelled(&x), &CTX).unwrap().loss;
    let (got, want) = (got.double_value(&[]), want.double_value(&[]));
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");

    // Shared classes add positives, and the loss moves.
    let y = Tensor::from_slice(&[0i64, 0, 0, 1, 1, 1]);
    let shared = supcon.step(&Batch { views: &x, labels: Some(&y) }, &CTX).unwrap().loss;
    assert!((shared.double_value(&[]) - got).abs() > 1e-3);
    let err = supcon.step(&Batch::unlabelled(&x), &CTX).unwrap_err().to_string();
    assert!(err.contains("labels"), "{err}");
}

#[test]
fn the_supervised_step_is_the_cross_entropy_of_its_logits() {
    let _rng = seed_global_rng(3);
    let x = views();
    let cfg = tiny("supervised-fmnist.yaml", &[]);
    let MethodConfig::Supervised(c) = cfg.method else { panic!("supervised") };
    let y = Tensor::from_slice(&[0i64, 3, 9, 3, 1, 0]);
    tch::manual_seed(4);
    let vs = VarStore::new(Device::Cpu);
    let mut sup = Supervised::new(&vs, &cfg, &c).unwrap();
    assert!(sup.uses_labels());
    assert_eq!(sup.views().len(), 1, "one view per image");
    let got = sup.step(&Batch { views: &x[..1], labels: Some(&y) }, &CTX).unwrap();
    let got = got.loss.double_value(&[]);

    // The replica: the same builds from the same seed; −log softmax(ŷ)[y], averaged, by hand.
    tch::manual_seed(4);
    let vs2 = VarStore::new(Device::Cpu);
    let backbone = cfg.model.backbone.build(&(vs2.root() / "backbone")).unwrap();
    let fc = nn::linear(vs2.root() / "classifier", backbone.feature_dim(), 10, Default::default());
    let logits = fc.forward(&backbone.forward_t(&x[0], true)).to_kind(Kind::Double);
    let mut want = 0.0;
    for i in 0..6 {
        let row: Vec<f64> = (0..10).map(|k| logits.double_value(&[i, k])).collect();
        let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
        want += lse - row[y.int64_value(&[i]) as usize];
    }
    want /= 6.0;
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    let err = sup.step(&Batch::unlabelled(&x[..1]), &CTX).unwrap_err().to_string();
    assert!(err.contains("labels"), "{err}");
}
