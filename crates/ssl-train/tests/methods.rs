//! The method abstraction: every shipped config trains three steps of a tiny model through the
//! one loop; a method defined here, outside the crate, is driven by `train_with`; MoCo's key
//! encoder really makes the keys and the queue changes only after the step; BYOL logs the
//! scheduled momentum of each step; SimSiam's predictor keeps a fixed learning rate.

use std::cell::Cell;
use std::rc::Rc;

mod common;
use common::{add_in_place, configs, tiny};

use ssl_aug::Compose;
use ssl_loss::l2_normalize;
use ssl_moco::momentum_at;
use ssl_models::Backbone;
use ssl_testutil::seed_global_rng;
use ssl_train::config::{self, MethodConfig};
use ssl_train::{
    Batch, Byol, Config, LrGroup, Method, Moco, SimSiam, StepContext, StepOutput, TrainError,
};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn views(n: i64) -> Vec<Tensor> {
    (0..2).map(|_| Tensor::rand([n, 1, 14, 14], (Kind::Float, Device::Cpu))).collect()
}

const CTX: StepContext = StepContext { step: 0, total: 10, epoch: 0 };

#[test]
fn every_shipped_config_trains_three_steps_of_a_tiny_model() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(configs()).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = file
            .strip_suffix("-fmnist.yaml")
            .or_else(|| file.strip_suffix("-fmnist-resnet18.yaml"))
        else {
            continue;
        };
        let cfg = tiny(&file, &[]);
        assert_eq!(cfg.method.name(), stem, "{file} names its method");
        let _rng = seed_global_rng(0); // `train` seeds again from `seed`
        let trained = ssl_train::train(&cfg, None).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(trained.losses.len(), 3, "{file}");
        assert!(trained.losses.iter().all(|l| l.is_finite()), "{file}: {:?}", trained.losses);
        names.push(file);
    }
    names.sort();
    let mut expected: Vec<String> = ssl_train::config::METHOD_NAMES
        .iter()
        .flat_map(|m| [format!("{m}-fmnist-resnet18.yaml"), format!("{m}-fmnist.yaml")])
        .collect();
    expected.sort();
    assert_eq!(names, expected, "the CPU and the ResNet-18 recipe of each method");
}

/// A method of our own: pull the unit backbone features of the two views together. Counts its
/// hooks, so the test sees the trainer call them.
#[derive(Debug)]
struct Align {
    backbone: Box<dyn Backbone>,
    views: [Compose; 2],
    after_steps: Rc<Cell<u32>>,
    after_epochs: Rc<Cell<u32>>,
}

impl Method for Align {
    fn views(&self) -> &[Compose] {
        &self.views
    }

    fn step(&mut self, batch: &Batch<'_>, _ctx: &StepContext) -> ssl_train::Result<StepOutput> {
        assert!(batch.labels.is_none(), "a method that does not use labels never sees them");
        let views = batch.views;
        let h1 = l2_normalize(&self.backbone.forward_t(&views[0], true), 1e-12);
        let h2 = l2_normalize(&self.backbone.forward_t(&views[1], true), 1e-12);
        let loss = (&h1 - &h2).square().sum_dim_intlist(1, false, Kind::Float).mean(Kind::Float);
        Ok(StepOutput {
            loss,
            embeddings: Some(h1.detach()),
            features: None,
            logs: vec![("answer", 42.0)],
        })
    }

    fn after_step(&mut self, _ctx: &StepContext) -> ssl_train::Result<()> {
        self.after_steps.set(self.after_steps.get() + 1);
        Ok(())
    }

    fn after_epoch(&mut self, _epoch: u64) -> ssl_train::Result<()> {
        self.after_epochs.set(self.after_epochs.get() + 1);
        Ok(())
    }

    fn backbone(&self) -> &dyn Backbone {
        &*self.backbone
    }

    fn backbone_mut(&mut self) -> &mut dyn Backbone {
        &mut *self.backbone
    }
}

#[test]
fn a_method_defined_outside_the_crate_trains_in_the_same_loop() {
    let cfg = tiny("simclr-fmnist.yaml", &[]);
    let (steps, epochs) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let (s, e) = (Rc::clone(&steps), Rc::clone(&epochs));
    let _rng = seed_global_rng(0);
    let trained = ssl_train::train_with(
        &cfg,
        None,
        Box::new(move |vs: &VarStore, cfg: &Config| {
            let backbone = cfg.model.backbone.build(&(vs.root() / "backbone"))?;
            let views = cfg.two_views()?;
            Ok(Box::new(Align { backbone, views, after_steps: s, after_epochs: e })
                as Box<dyn Method>)
        }),
    )
    .unwrap();
    assert_eq!(trained.losses.len(), 3);
    // Unit vectors: 0 ≤ ‖h₁ − h₂‖² ≤ 4.
    assert!(trained.losses.iter().all(|l| (0.0..=4.0).contains(l)), "{:?}", trained.losses);
    assert_eq!((steps.get(), epochs.get()), (3, 1), "the hooks ran after each step and the epoch");
    assert_eq!(trained.model.backbone().feature_dim(), 16);
}

fn moco(extra: &[&str]) -> (VarStore, Moco) {
    let cfg = tiny("mocov2-fmnist.yaml", extra);
    let MethodConfig::Mocov2(m) = cfg.method else { panic!("mocov2") };
    let vs = VarStore::new(Device::Cpu);
    let moco = Moco::new(&vs, &cfg, &m).unwrap();
    (vs, moco)
}

/// The step's loss with libtorch's generator (the key shuffle) reseeded, so two calls see the
/// same permutation.
fn moco_loss(m: &mut Moco, v: &[Tensor]) -> f64 {
    let _rng = seed_global_rng(5);
    m.step(&Batch::unlabelled(v), &CTX).unwrap().loss.double_value(&[])
}

#[test]
fn mocos_keys_come_from_the_key_encoder_and_only_its_weights_matter() {
    let _rng = seed_global_rng(1);
    let (_vs, mut m) = moco(&["method.head.hidden_dim=8", "method.head.output_dim=8"]);
    drop(_rng);
    let v = {
        let _g = seed_global_rng(2);
        views(8)
    };
    let base = moco_loss(&mut m, &v);
    let vars = m.key_encoder().var_store().variables();
    // The key encoder's BatchNorm statistics are not used by its train-mode forward.
    add_in_place(&vars, "backbone.bn1.running_mean", 3.0);
    assert_eq!(moco_loss(&mut m, &v), base, "running statistics do not make the keys");
    // Its weights do.
    add_in_place(&vars, "head.layers.2.weight", 0.5);
    let moved = moco_loss(&mut m, &v);
    assert!(
        (moved - base).abs() > 1e-4,
        "the key encoder's head changes the loss: {moved} vs {base}"
    );
}

#[test]
fn mocos_queue_changes_only_after_the_step_and_takes_both_symmetric_keys() {
    let _rng = seed_global_rng(3);
    let (_vs, mut m) = moco(&["method.symmetric=true", "method.queue_size=64"]);
    drop(_rng);
    let v = {
        let _g = seed_global_rng(4);
        views(8)
    };
    let before = m.queue().negatives().copy();
    let out = {
        let _g = seed_global_rng(6);
        m.step(&Batch::unlabelled(&v), &CTX).unwrap()
    };
    assert!(m.queue().negatives().equal(&before), "both halves saw the queue as it was");
    let mi = out.logs.iter().find(|(k, _)| *k == "mi_bound").unwrap().1;
    assert!((mi - (65f64.ln() - out.loss.double_value(&[]))).abs() < 1e-9, "K = 64 negatives used");
    m.after_step(&CTX).unwrap();
    let after = m.queue().negatives();
    assert_eq!(m.queue().real_keys(), 16, "2N = 16 keys of the two symmetric halves");
    assert!(after.narrow(0, 16, 48).equal(&before.narrow(0, 16, 48)));
    assert!(!after.narrow(0, 0, 16).equal(&before.narrow(0, 0, 16)));
    let norms = after.narrow(0, 0, 16).norm_scalaropt_dim(2, [1i64].as_slice(), false);
    assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-5, "unit keys");
}

#[test]
fn byol_logs_and_applies_the_scheduled_momentum_of_each_step() {
    let _rng = seed_global_rng(7);
    let cfg = tiny("byol-fmnist.yaml", &[]);
    let MethodConfig::Byol(b) = cfg.method else { panic!("byol") };
    let vs = VarStore::new(Device::Cpu);
    let mut byol = Byol::new(&vs, &cfg, &b).unwrap();
    let v = views(8);
    for step in [0u64, 4, 9] {
        let ctx = StepContext { step, total: 10, epoch: 0 };
        let out = byol.step(&Batch::unlabelled(&v), &ctx).unwrap();
        let logged = out.logs.iter().find(|(k, _)| *k == "momentum").unwrap().1;
        assert_eq!(logged, momentum_at(step, 10, b.base_momentum, 1.0));
        // BYOL's symmetric loss is the sum of two normalised MSEs: in [0, 8].
        let l = out.loss.double_value(&[]);
        assert!((0.0..=8.0).contains(&l), "{l}");
    }
}

#[test]
fn byols_targets_come_from_the_target_networks_weights() {
    let _rng = seed_global_rng(10);
    let cfg = tiny("byol-fmnist.yaml", &[]);
    let MethodConfig::Byol(b) = cfg.method else { panic!("byol") };
    let vs = VarStore::new(Device::Cpu);
    let mut byol = Byol::new(&vs, &cfg, &b).unwrap();
    let v = views(8);
    let loss = |m: &mut Byol| m.step(&Batch::unlabelled(&v), &CTX).unwrap().loss.double_value(&[]);
    let base = loss(&mut byol);
    let vars = byol.target().var_store().variables();
    add_in_place(&vars, "backbone.bn1.running_mean", 3.0);
    assert_eq!(
        loss(&mut byol),
        base,
        "the target's BatchNorm statistics are not used in train mode"
    );
    add_in_place(&vars, "head.layers.3.weight", 0.5);
    let moved = loss(&mut byol);
    assert!(
        (moved - base).abs() > 1e-4,
        "the target's weights make the targets: {moved} vs {base}"
    );
}

#[test]
fn simsiams_predictor_keeps_the_peak_learning_rate_and_its_targets_get_no_gradient() {
    let _rng = seed_global_rng(8);
    let cfg = tiny("simsiam-fmnist.yaml", &[]);
    let MethodConfig::Simsiam(s) = cfg.method else { panic!("simsiam") };
    let vs = VarStore::new(Device::Cpu);
    let mut simsiam = SimSiam::new(&vs, &cfg, &s).unwrap();
    assert_eq!(simsiam.lr_group("predictor.layers.0.weight"), LrGroup::Fixed);
    assert_eq!(simsiam.lr_group("backbone.conv1.weight"), LrGroup::Scheduled);
    // −cos lies in [−1, 1]; at initialisation p and z are far from aligned.
    let l = simsiam.step(&Batch::unlabelled(&views(8)), &CTX).unwrap().loss.double_value(&[]);
    assert!((-1.0..=1.0).contains(&l), "{l}");
}

#[test]
fn an_unknown_method_or_key_is_an_error_naming_it() {
    let err = config::load(&configs().join("byol-fmnist.yaml"), &["method.name=byl".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown method `byl`") && err.contains("simsiam"), "{err}");
    let err = config::load(&configs().join("byol-fmnist.yaml"), &["method.momentum=0.9".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("method.") && err.contains("momentum"), "{err}");
    let err = config::load(
        &configs().join("byol-fmnist.yaml"),
        &["method.predictor.output_dim=64".into()],
    )
    .unwrap_err();
    assert!(
        matches!(err, TrainError::Invalid { ref field, .. } if field == "method.predictor.output_dim"),
        "{err}"
    );
}
