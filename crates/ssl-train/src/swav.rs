//! SwAV: multi-crop views, learnable prototypes, Sinkhorn codes and swapped prediction.

use serde::{Deserialize, Serialize};
use ssl_aug::{Compose, ViewConfig};
use ssl_loss::{l2_normalize, sinkhorn, SwavLoss, SwavLossConfig};
use ssl_moco::FeatureQueue;
use ssl_models::{Backbone, ProjectionHead};
use tch::nn::{self, ModuleT, VarStore};
use tch::{Kind, Tensor};

use crate::config::HeadConfig;
use crate::error::{at_key, check_at_least, invalid};
use crate::method::{Batch, Method, StepContext, StepOutput};
use crate::state::{load_queue, queue_state, State, StateDict};
use crate::{Config, Result};

/// SwAV's settings (`method: {name: swav, ...}`). The global crops use `augment`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwavConfig {
    /// The projector g (paper: 2 layers, 2048 hidden with BatchNorm, 128 out).
    pub projector: HeadConfig,
    /// K, the number of prototypes (paper: 3,000 for ImageNet; about 10× the classes).
    pub num_prototypes: i64,
    /// τ, ε and the Sinkhorn iterations (paper: 0.1, 0.05, 3).
    pub loss: SwavLossConfig,
    /// Global crops (paper: 2), each made by `augment`; their codes are the targets.
    pub n_global: usize,
    /// The small crops' augmentations (paper: 96 px, crop scale (0.05, 0.14)).
    pub local: ViewConfig,
    /// Small crops (paper: 6).
    pub n_local: usize,
    /// Steps during which the prototypes get no gradient (paper: the first epoch, 313
    /// iterations at batch 4,096).
    pub freeze_prototypes_steps: u64,
    /// Features kept per global crop to compute the codes over more than the batch (paper:
    /// 3,840 at batch 256); 0: no queue.
    pub queue_size: i64,
    /// The epoch from which the queue fills; it is used once full (paper: 15).
    pub queue_start_epoch: u64,
}

impl SwavConfig {
    /// Checks every field; errors name `method.<field>`.
    ///
    /// # Errors
    /// [`crate::TrainError::Invalid`] naming the field, or the loss's config error.
    pub fn validate(&self) -> Result<()> {
        self.projector.validate("method.projector")?;
        self.loss.build().map_err(|e| at_key("method.loss", e))?;
        check_at_least("method.num_prototypes", self.num_prototypes, 2)?;
        if self.n_global < 1 || self.n_global + self.n_local < 2 {
            return invalid(
                "method.n_global",
                format!("{} (n_local {})", self.n_global, self.n_local),
                "needs ≥ 1 global crop and ≥ 2 crops in all",
            );
        }
        check_at_least("method.queue_size", self.queue_size, 0)
    }
}

/// SwAV on the backbone of `model.backbone`.
///
/// Paper: Caron, Misra, Mairal, Goyal, Bojanowski, Joulin, "Unsupervised Learning of Visual
/// Features by Contrasting Cluster Assignments", NeurIPS 2020,
/// <https://arxiv.org/abs/2006.09882>, Eq. (1)–(3) and `main_swav.py`.
///
/// ```text
/// C ← normalise(C) (each step, before the forward);  ẑᵥ = normalise(g(f(x̃ᵥ)))  for all V crops
/// sᵥ = ẑᵥ Cᵀ;   q_s = sinkhorn([queue_s Cᵀ; s_s]; ε)[last B rows]  for the global crops s
/// L = 1/|S| Σ_{s} 1/(V − 1) Σ_{v≠s} CE(q_s, softmax(sᵥ/τ))
/// ```
///
/// Crops of one resolution share a backbone pass (BatchNorm per resolution, as the paper's
/// code); the projector sees all crops at once. For the first `freeze_prototypes_steps` steps
/// the scores use C without a graph, so C gets no gradient and the optimiser leaves it as it is
/// (the paper sets its gradient to None). The codes carry no gradient and are computed in f32
/// (or f64), whatever the backbone's number format. The queue keeps the global crops'
/// features, fills from `queue_start_epoch` and joins the codes once full; this step's features
/// are enqueued after the optimiser step, so the codes see the queue as it was, as the paper's.
#[derive(Debug)]
pub struct Swav {
    backbone: Box<dyn Backbone>,
    head: ProjectionHead,
    prototypes: Tensor,
    loss: SwavLoss,
    queues: Vec<FeatureQueue>,
    pending: Option<Vec<Tensor>>,
    cfg: SwavConfig,
    views: Vec<Compose>,
}

impl Swav {
    /// Builds `backbone.*`, `head.*` and `prototypes` (`[K, D]`, unit rows) in `vs`.
    ///
    /// # Errors
    /// Config errors naming the field; the parts' errors.
    pub fn new(vs: &VarStore, cfg: &Config, c: &SwavConfig) -> Result<Self> {
        c.validate()?;
        let root = vs.root();
        let backbone = cfg.model.backbone.build(&(&root / "backbone"))?;
        let head = c.projector.build(&(&root / "head"), backbone.feature_dim())?;
        let d = c.projector.output_dim;
        let prototypes =
            root.var("prototypes", &[c.num_prototypes, d], nn::init::DEFAULT_KAIMING_UNIFORM);
        tch::no_grad(|| prototypes.shallow_clone().copy_(&l2_normalize(&prototypes, 1e-12)));
        let queues = (0..c.n_global)
            .filter(|_| c.queue_size > 0)
            .map(|_| FeatureQueue::new(c.queue_size, d, Kind::Float, vs.device()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut views = Vec::with_capacity(c.n_global + c.n_local);
        for _ in 0..c.n_global {
            views.push(cfg.augment.build()?);
        }
        for _ in 0..c.n_local {
            views.push(c.local.build()?);
        }
        let loss = c.loss.build()?;
        Ok(Self { backbone, head, prototypes, loss, queues, pending: None, cfg: *c, views })
    }

    /// The prototypes C (`[K, D]`).
    pub fn prototypes(&self) -> &Tensor {
        &self.prototypes
    }

    /// Whether the codes of a step in `epoch` include the queue (filled and full).
    fn queue_in_use(&self, epoch: u64) -> bool {
        epoch >= self.cfg.queue_start_epoch
            && !self.queues.is_empty()
            && self.queues.iter().all(|q| q.real_keys() == q.capacity())
    }
}

impl Method for Swav {
    fn views(&self) -> &[Compose] {
        &self.views
    }

    fn step(&mut self, batch: &Batch<'_>, ctx: &StepContext) -> Result<StepOutput> {
        let (views, c) = (batch.views, self.cfg);
        let n = views[0].size()[0];
        tch::no_grad(|| {
            let unit = l2_normalize(&self.prototypes, 1e-12);
            self.prototypes.shallow_clone().copy_(&unit);
        });
        let global = Tensor::cat(&views[..c.n_global], 0); // [n_global·N, C, g, g]
        let mut h = vec![self.backbone.forward_t(&global, true)];
        if c.n_local > 0 {
            let local = Tensor::cat(&views[c.n_global..], 0); // [n_local·N, C, l, l]
            h.push(self.backbone.forward_t(&local, true));
        }
        let h = Tensor::cat(&h, 0); // [V·N, F]
        let z = l2_normalize(&self.head.forward_t(&h, true), 1e-12); // [V·N, D]
        let frozen = ctx.step < c.freeze_prototypes_steps;
        let protos =
            if frozen { self.prototypes.detach() } else { self.prototypes.shallow_clone() };
        let all = z.matmul(&protos.tr()); // [V·N, K]
        let scores: Vec<Tensor> =
            (0..views.len() as i64).map(|v| all.narrow(0, v * n, n)).collect();
        let with_queue = self.queue_in_use(ctx.epoch);
        let codes: Vec<Tensor> = (0..c.n_global)
            .map(|s| {
                let mut s_all = scores[s].detach();
                if with_queue {
                    let past =
                        tch::no_grad(|| self.queues[s].negatives().matmul(&protos.detach().tr()));
                    s_all = Tensor::cat(&[past, s_all], 0); // [L + N, K]
                }
                let q = sinkhorn(&s_all, c.loss.epsilon, c.loss.sinkhorn_iterations);
                q.narrow(0, q.size()[0] - n, n) // the batch's codes
            })
            .collect();
        let loss = self.loss.f_forward_with_codes(&scores, &codes)?;
        if !self.queues.is_empty() && ctx.epoch >= c.queue_start_epoch {
            self.pending =
                Some((0..c.n_global as i64).map(|s| z.narrow(0, s * n, n).detach()).collect());
        }
        Ok(StepOutput {
            loss,
            embeddings: Some(z.narrow(0, 0, n).detach()),
            features: Some(h.narrow(0, 0, n).detach()),
            logs: vec![
                ("queue_in_use", f64::from(u8::from(with_queue))),
                ("prototypes_frozen", f64::from(u8::from(frozen))),
            ],
        })
    }

    fn after_step(&mut self, _ctx: &StepContext) -> Result<()> {
        if let Some(features) = self.pending.take() {
            for (queue, f) in self.queues.iter_mut().zip(&features) {
                queue.enqueue(f)?;
            }
        }
        Ok(())
    }

    fn state(&self) -> State {
        let queues = self.queues.iter().enumerate();
        queues.flat_map(|(i, q)| queue_state(&format!("queue{i}"), q)).collect()
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        for (i, q) in self.queues.iter_mut().enumerate() {
            load_queue(&format!("queue{i}"), q, state)?;
        }
        Ok(())
    }

    fn backbone(&self) -> &dyn Backbone {
        &*self.backbone
    }

    fn backbone_mut(&mut self) -> &mut dyn Backbone {
        &mut *self.backbone
    }
}
