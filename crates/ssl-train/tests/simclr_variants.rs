//! SimCLR's loss variants on SimCLR's encoder: HCL with β = 0 and τ⁺ = 0 is NT-Xent, step for
//! step through the trainer; DCL's step equals its formula written out by hand on the
//! encoder's projections.

mod common;
use common::tiny;

use ssl_loss::l2_normalize;
use ssl_models::ProjectionHeadConfig;
use ssl_testutil::seed_global_rng;
use ssl_train::config::MethodConfig;
use ssl_train::{Batch, Encoder, Method, SimClr, StepContext};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

#[test]
fn hcl_without_hardness_or_debiasing_trains_exactly_as_simclr() {
    // Robinson et al. 2021, Eq. 4: β = 0 weighs every negative alike and τ⁺ = 0 removes the
    // positive-class correction, which leaves NT-Xent's denominator (both at SimCLR's τ 0.2).
    let plain = ["method.loss.beta=0", "method.loss.tau_plus=0", "method.loss.temperature=0.2"];
    let runs: Vec<Vec<f64>> =
        [tiny("simclr-fmnist.yaml", &[]), tiny("simclr-hcl-fmnist.yaml", &plain)]
            .iter()
            .map(|cfg| {
                let _rng = seed_global_rng(0); // `train` seeds again from `seed`
                ssl_train::train(cfg, None).unwrap().losses
            })
            .collect();
    for (a, b) in runs[0].iter().zip(&runs[1]) {
        assert!((a - b).abs() < 1e-5, "{:?} vs {:?}", runs[0], runs[1]);
    }
    // And the shipped τ 0.5, β 1, τ⁺ 0.1 is a different loss.
    let _rng = seed_global_rng(0);
    let hcl = ssl_train::train(&tiny("simclr-hcl-fmnist.yaml", &[]), None).unwrap().losses;
    assert!((hcl[0] - runs[0][0]).abs() > 1e-3, "{hcl:?} vs {:?}", runs[0]);
}

#[test]
fn dcl_step_is_its_formula_on_the_encoders_projections() {
    let cfg = tiny("simclr-dcl-fmnist.yaml", &[]);
    let MethodConfig::SimclrDcl(c) = cfg.method else { panic!("simclr-dcl") };
    let _rng = seed_global_rng(3);
    let x: Vec<Tensor> =
        (0..2).map(|_| Tensor::rand([6, 1, 14, 14], (Kind::Float, Device::Cpu))).collect();
    tch::manual_seed(5);
    let vs = VarStore::new(Device::Cpu);
    let mut dcl =
        SimClr::with_loss(&vs.root(), &cfg, &c.projection, Box::new(c.loss.build().unwrap()))
            .unwrap();
    let ctx = StepContext { step: 0, total: 3, epoch: 0 };
    let got = dcl.step(&Batch::unlabelled(&x), &ctx).unwrap().loss.double_value(&[]);

    // The same encoder, drawn from the same seed, and Yeh et al. 2022, Eq. 6 by hand:
    // ℓᵢ = −sᵢⱼ/τ + log Σ_{l ∉ {i, j}} exp(sᵢₗ/τ), averaged over the 2N anchors.
    tch::manual_seed(5);
    let vs2 = VarStore::new(Device::Cpu);
    let head = ProjectionHeadConfig {
        hidden_dim: c.projection.hidden_dim,
        output_dim: c.projection.output_dim,
        ..ProjectionHeadConfig::simclr(1)
    };
    let encoder = Encoder::new(&vs2.root(), &cfg.model.backbone, &head).unwrap();
    let (_, z) = encoder.features_and_projection(&Tensor::cat(&x, 0), true);
    let z = l2_normalize(&z, 1e-12).to_kind(Kind::Double);
    let (n2, tau) = (z.size()[0], c.loss.temperature);
    let s = z.matmul(&z.tr());
    let mut want = 0.0;
    for i in 0..n2 {
        let j = (i + n2 / 2) % n2;
        let denom: f64 = (0..n2)
            .filter(|&l| l != i && l != j)
            .map(|l| (s.double_value(&[i, l]) / tau).exp())
            .sum();
        want += -s.double_value(&[i, j]) / tau + denom.ln();
    }
    want /= n2 as f64;
    assert!((got - want).abs() < 1e-4, "{got} vs {want}");
}
