//! `train.on_non_finite`: a step whose loss or gradient is NaN stops the run with an error
//! naming the step and the last good checkpoint, or (skip) leaves the weights untouched and is
//! counted.

mod common;

use ssl_aug::Compose;
use ssl_models::Backbone;
use ssl_testutil::ScratchDir;
use ssl_train::state::{State, StateDict};
use ssl_train::{
    train_with, Batch, Config, LrGroup, Method, Result, RunDir, StepContext, StepOutput, TrainError,
};

/// What to corrupt at step `at`.
#[derive(Debug, Clone, Copy)]
enum Poison {
    /// The loss becomes NaN.
    Loss,
    /// The loss stays finite, but the backbone's gradients become NaN (√0 has an infinite
    /// derivative; times 0 it is NaN).
    Gradient,
}

/// SimCLR with one step poisoned (once: a skipped step's number comes again with the next
/// batch).
#[derive(Debug)]
struct Poisoned {
    inner: Box<dyn Method>,
    at: u64,
    how: Poison,
    done: bool,
}

impl Method for Poisoned {
    fn views(&self) -> &[Compose] {
        self.inner.views()
    }
    fn step(&mut self, batch: &Batch<'_>, ctx: &StepContext) -> Result<StepOutput> {
        let mut out = self.inner.step(batch, ctx)?;
        if ctx.step == self.at && !self.done {
            self.done = true;
            out.loss = match self.how {
                Poison::Loss => &out.loss * f64::NAN,
                Poison::Gradient => {
                    let h = self.inner.backbone().forward_t(&batch.views[0], true);
                    &out.loss + (h * 0.0).sqrt().sum(tch::Kind::Float) * 0.0
                }
            };
        }
        Ok(out)
    }
    fn after_step(&mut self, ctx: &StepContext) -> Result<()> {
        self.inner.after_step(ctx)
    }
    fn state(&self) -> State {
        self.inner.state()
    }
    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        self.inner.load_state(state)
    }
    fn backbone(&self) -> &dyn Backbone {
        self.inner.backbone()
    }
    fn backbone_mut(&mut self) -> &mut dyn Backbone {
        self.inner.backbone_mut()
    }
    fn lr_group(&self, name: &str) -> LrGroup {
        self.inner.lr_group(name)
    }
}

fn run(cfg: &Config, dir: &ScratchDir, how: Poison) -> Result<ssl_train::Trained> {
    let run = RunDir::create(dir, cfg).unwrap();
    train_with(
        cfg,
        Some(&run),
        Box::new(move |vs, cfg| {
            Ok(Box::new(Poisoned { inner: cfg.method.build(vs, cfg)?, at: 2, how, done: false }))
        }),
    )
}

#[test]
fn a_nan_loss_stops_the_run_naming_the_step_and_the_last_checkpoint() {
    let cfg = common::tiny("simclr-fmnist.yaml", &["checkpoint.every_steps=1", "train.steps=4"]);
    let dir = ScratchDir::new("guard-stop");
    let err = run(&cfg, &dir, Poison::Loss).unwrap_err();
    let TrainError::NonFinite { step, what, last_good } = &err else { panic!("{err}") };
    assert_eq!((*step, what.as_str()), (2, "loss"));
    assert!(last_good.contains("step-000000002.safetensors"), "{err}");
    let dir = ScratchDir::new("guard-stop-grad");
    let err = run(&cfg, &dir, Poison::Gradient).unwrap_err().to_string();
    assert!(err.contains("step 2") && err.contains("the gradient of backbone."), "{err}");
}

#[test]
fn skip_leaves_the_weights_finite_and_counts_the_step() {
    for how in [Poison::Loss, Poison::Gradient] {
        let cfg =
            common::tiny("simclr-fmnist.yaml", &["train.on_non_finite=skip", "train.steps=4"]);
        let dir = ScratchDir::new("guard-skip");
        let trained = run(&cfg, &dir, how).unwrap();
        assert_eq!((trained.skipped_steps, trained.losses.len()), (1, 4), "{how:?}");
        assert!(trained.losses.iter().all(|l| l.is_finite()));
        // A NaN update would have reached every backbone weight.
        for (name, v) in trained.vs.variables() {
            let finite = v.isfinite().all().int64_value(&[]) == 1;
            assert!(finite, "{how:?}: {name} is not finite");
        }
    }
}
