//! A method of your own from the public parts: SimCLR's NT-Xent plus extra negatives from a
//! momentum key encoder's queue, trained by the shipped loop, scored on held-out images.
//! `cargo run -p ssl-train --example custom_method -- [STEPS]` (data: `$SSL_RS_DATA_DIR`).

use ssl_aug::Compose;
use ssl_loss::{l2_normalize, InfoNce, InfoNceConfig, NtXent, NtXentConfig, PairLoss};
use ssl_moco::{BufferRule, FeatureQueue, MomentumEncoder};
use ssl_models::{Backbone, ProjectionHeadConfig};
use ssl_train::evaluate::{EvalData, Scores};
use ssl_train::{Batch, Config, Encoder, Method, Result, StepContext, StepOutput};
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

/// L = NT-Xent(z₁, z₂) + InfoNCE(z₁, k₂; queue), k from an EMA copy of the encoder.
#[derive(Debug)]
pub(crate) struct ClrWithQueue {
    encoder: Encoder,
    keys: MomentumEncoder<Encoder>,
    queue: FeatureQueue,
    nt_xent: NtXent,
    info_nce: InfoNce,
    views: [Compose; 2],
    pending: Option<Tensor>,
}

impl ClrWithQueue {
    pub(crate) fn new(vs: &VarStore, cfg: &Config) -> Result<Self> {
        let head = ProjectionHeadConfig::simclr(1); // input width set by Encoder
        let build = |p: &tch::nn::Path| Encoder::new(p, &cfg.model.backbone, &head);
        Ok(Self {
            encoder: build(&vs.root())?,
            keys: MomentumEncoder::new(vs, BufferRule::Own, build)?,
            queue: FeatureQueue::new(1024, head.output_dim, Kind::Float, vs.device())?,
            nt_xent: NtXentConfig { temperature: 0.2, ..Default::default() }.build()?,
            info_nce: InfoNceConfig { temperature: 0.2 }.build()?,
            views: cfg.two_views()?,
            pending: None,
        })
    }
}

impl Method for ClrWithQueue {
    fn views(&self) -> &[Compose] {
        &self.views
    }

    fn step(&mut self, Batch { views: v, .. }: &Batch<'_>, _: &StepContext) -> Result<StepOutput> {
        let (h1, z1) = self.encoder.features_and_projection(&v[0], true); // [N, F], [N, D]
        let z2 = self.encoder.forward_t(&v[1], true);
        let k2 = l2_normalize(&self.keys.forward_t(&v[1], true), 1e-12); // no gradient
        let extra = self.info_nce.f_forward_with_negatives(&z1, &k2, &self.queue.negatives())?;
        let loss = self.nt_xent.f_forward(&z1, &z2)? + &extra;
        self.pending = Some(k2); // enqueued after the optimiser step
        let (embeddings, features) = (Some(z1.detach()), Some(h1.detach()));
        Ok(StepOutput { loss, embeddings, features, logs: vec![] })
    }

    fn after_step(&mut self, _ctx: &StepContext) -> Result<()> {
        self.keys.update(0.99)?;
        if let Some(k) = self.pending.take() {
            self.queue.enqueue(&k)?;
        }
        Ok(())
    }

    fn backbone(&self) -> &dyn Backbone {
        self.encoder.backbone()
    }

    fn backbone_mut(&mut self) -> &mut dyn Backbone {
        self.encoder.backbone_mut()
    }
}

/// Trains it `steps` steps (default config + `overrides`), scores it on held-out images.
pub(crate) fn run(steps: u64, overrides: &[String]) -> anyhow::Result<(Vec<f64>, Scores)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/simclr-fmnist.yaml");
    let mut o = vec![format!("train.steps={steps}"), "train.budget_minutes=null".into()];
    o.push("eval.validation=true".into());
    if let Ok(dir) = std::env::var("SSL_RS_DATA_DIR") {
        o.push(format!("data.dir={dir}"));
    }
    o.extend_from_slice(overrides);
    let cfg = ssl_train::config::load(path.as_ref(), &o)?;
    let build = Box::new(|vs: &VarStore, cfg: &Config| -> Result<Box<dyn Method>> {
        Ok(Box::new(ClrWithQueue::new(vs, cfg)?))
    });
    let trained = ssl_train::train_with(&cfg, None, build)?;
    let scores = EvalData::load(&cfg)?.score_network(trained.model.backbone(), &cfg, Device::Cpu);
    Ok((trained.losses, scores))
}

fn main() -> anyhow::Result<()> {
    let steps = std::env::args().nth(1).map_or(Ok(50), |s| s.parse())?;
    let (losses, s) = run(steps, &[])?;
    println!("loss {:.3} → {:.3}", losses[0], losses[losses.len() - 1]);
    println!("held-out kNN-200 {:.2} %, linear {:.2} %", s.knn_top1 * 100.0, s.linear_top1 * 100.0);
    Ok(())
}
