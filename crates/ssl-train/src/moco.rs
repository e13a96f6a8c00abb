//! MoCo v1 and v2: a query encoder, its momentum copy as the key encoder, and InfoNCE against
//! a queue of past keys.

use serde::{Deserialize, Serialize};
use ssl_aug::Compose;
use ssl_loss::{l2_normalize, mi_lower_bound, InfoNce, InfoNceConfig};
use ssl_moco::{BufferRule, FeatureQueue, MomentumEncoder};
use ssl_models::Backbone;
use tch::nn::{ModuleT, VarStore};
use tch::{Kind, Tensor};

use crate::config::HeadConfig;
use crate::encoder::Encoder;
use crate::error::{check_at_least, check_unit_interval};
use crate::method::{Batch, Method, StepContext, StepOutput};
use crate::state::{load_momentum, load_queue, momentum_state, queue_state, State, StateDict};
use crate::{Config, Result};

/// MoCo's keys (`method: {name: mocov1 | mocov2, ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MocoConfig {
    /// The projection head: v1 is one linear layer to 128-d (`num_layers: 1`), v2 a 2-layer
    /// MLP (hidden 2048 in the paper, no BatchNorm).
    pub head: HeadConfig,
    /// InfoNCE temperature τ (v1: 0.07, v2: 0.2).
    pub temperature: f64,
    /// K, the number of queued negative keys (paper: 65,536; below the number of training
    /// images, so that the queue never holds two keys of one image from one epoch).
    pub queue_size: i64,
    /// The key encoder's EMA coefficient m (paper: 0.999; MoCo's CIFAR demo: 0.99).
    pub momentum: f64,
    /// The key encoder's forward runs on this many sub-batches of the shuffled key batch, so
    /// its BatchNorm statistics are not those of the queries' batch (the single-process form
    /// of shuffling BN; 8 in MoCo's CIFAR demo; 1: off).
    pub key_bn_splits: i64,
    /// Also contrast the second view's query with the first view's key, and average (MoCo v2
    /// "symmetric" as in its CIFAR demo); both halves use the queue as it was before this
    /// step's keys are enqueued.
    pub symmetric: bool,
}

impl MocoConfig {
    /// Checks every field; errors name `method.<field>`.
    ///
    /// # Errors
    /// [`crate::TrainError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        self.head.validate("method.head")?;
        InfoNceConfig { temperature: self.temperature }.build()?;
        check_at_least("method.queue_size", self.queue_size, 1)?;
        check_unit_interval("method.momentum", self.momentum)?;
        check_at_least("method.key_bn_splits", self.key_bn_splits, 1)
    }
}

/// MoCo v1 / v2 on the backbone of `model.backbone`.
///
/// Papers: He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual
/// Representation Learning", CVPR 2020, <https://arxiv.org/abs/1911.05722>, Algorithm 1;
/// Chen, Fan, Girshick, He, "Improved Baselines with Momentum Contrastive Learning", 2020,
/// <https://arxiv.org/abs/2003.04297> (MLP head, blur, τ 0.2, cosine schedule).
///
/// ```text
/// q = g_q(f_q(x_q)),  k = g_k(f_k(x_k))  (no gradient; shuffled sub-batches for BN)
/// L = −log exp(q̂·k̂/τ) / (exp(q̂·k̂/τ) + Σ_{j=1..K} exp(q̂·n̂ⱼ/τ)),   n = the queue
/// after the step: θ_k ← m θ_k + (1 − m) θ_q;  enqueue k̂ (oldest out)
/// ```
///
/// Logged: `mi_bound` = ln(K + 1) − L with K the negatives this step used.
#[derive(Debug)]
pub struct Moco {
    encoder: Encoder,
    target: MomentumEncoder<Encoder>,
    queue: FeatureQueue,
    loss: InfoNce,
    cfg: MocoConfig,
    views: [Compose; 2],
    /// The unit keys of this step, enqueued after the optimiser step.
    pending: Option<Tensor>,
}

impl Moco {
    /// Builds the query encoder in `vs` (`backbone.*`, `head.*`), its momentum copy, and a
    /// queue of K random unit keys.
    ///
    /// # Errors
    /// Config errors naming the field, and the parts' errors.
    pub fn new(vs: &VarStore, cfg: &Config, moco: &MocoConfig) -> Result<Self> {
        moco.validate()?;
        let head = moco.head.projection();
        let build = |p: &tch::nn::Path| Encoder::new(p, &cfg.model.backbone, &head);
        let encoder = build(&vs.root())?;
        let target = MomentumEncoder::new(vs, BufferRule::Own, build)?;
        let dim = head.output_dim;
        let queue = FeatureQueue::new(moco.queue_size, dim, Kind::Float, vs.device())?;
        let loss = InfoNceConfig { temperature: moco.temperature }.build()?;
        let views = cfg.two_views()?;
        Ok(Self { encoder, target, queue, loss, cfg: *moco, views, pending: None })
    }

    /// Unit keys of `x` (`[N, C, H, W]` → `[N, D]`) from the key encoder, computed on
    /// `key_bn_splits` sub-batches of a random permutation of the batch and put back in order.
    fn keys(&self, x: &Tensor) -> Tensor {
        let split = |c: &Tensor| vec![self.target.forward_t(c, true)];
        let k = in_shuffled_sub_batches(x, self.cfg.key_bn_splits, split).remove(0); // [N, D]
        l2_normalize(&k, 1e-12)
    }

    /// The query encoder (for tests and custom methods).
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The key encoder.
    pub fn key_encoder(&self) -> &MomentumEncoder<Encoder> {
        &self.target
    }

    /// The queue of negatives.
    pub fn queue(&self) -> &FeatureQueue {
        &self.queue
    }
}

/// `f`'s outputs (each `[rows, …]`) on `splits` sub-batches of a random permutation of `x`'s
/// rows, each output put back in `x`'s order: the single-process form of MoCo's shuffling
/// BatchNorm, so a key encoder's batch statistics cannot reveal which key is the positive.
/// One sub-batch (`splits` 1) is `f(x)` without a permutation.
pub(crate) fn in_shuffled_sub_batches(
    x: &Tensor,
    splits: i64,
    f: impl Fn(&Tensor) -> Vec<Tensor>,
) -> Vec<Tensor> {
    let n = x.size()[0];
    let splits = splits.min(n);
    if splits == 1 {
        return f(x);
    }
    let perm = Tensor::randperm(n, (Kind::Int64, x.device())); // [N]
    let parts: Vec<Vec<Tensor>> = x.index_select(0, &perm).chunk(splits, 0).iter().map(f).collect();
    let back = perm.argsort(0, false);
    (0..parts[0].len())
        .map(|i| {
            let all: Vec<&Tensor> = parts.iter().map(|p| &p[i]).collect();
            Tensor::cat(&all, 0).index_select(0, &back) // in shuffled order → in order
        })
        .collect()
}

impl Method for Moco {
    fn views(&self) -> &[Compose] {
        &self.views
    }

    fn step(&mut self, batch: &Batch<'_>, _ctx: &StepContext) -> Result<StepOutput> {
        let views = batch.views;
        let negatives = self.queue.negatives(); // [K, D], this step's, before any enqueue
        let (h1, q1) = self.encoder.features_and_projection(&views[0], true); // [N, F], [N, D]
        let k2 = self.keys(&views[1]);
        let mut loss = self.loss.f_forward_with_negatives(&q1, &k2, &negatives)?;
        let mut keys = k2;
        if self.cfg.symmetric {
            let q2 = self.encoder.forward_t(&views[1], true);
            let k1 = self.keys(&views[0]);
            loss = (loss + self.loss.f_forward_with_negatives(&q2, &k1, &negatives)?) * 0.5;
            keys = Tensor::cat(&[keys, k1], 0); // [2N, D]
        }
        self.pending = Some(keys);
        let k_used = negatives.size()[0] as u64;
        let mi = mi_lower_bound(loss.double_value(&[]), k_used);
        Ok(StepOutput {
            embeddings: Some(l2_normalize(&q1.detach(), 1e-12)),
            features: Some(h1.detach()),
            loss,
            logs: vec![("mi_bound", mi)],
        })
    }

    fn after_step(&mut self, _ctx: &StepContext) -> Result<()> {
        self.target.update(self.cfg.momentum)?;
        if let Some(keys) = self.pending.take() {
            self.queue.enqueue(&keys)?;
        }
        Ok(())
    }

    fn reset_targets(&mut self) -> Result<()> {
        Ok(self.target.reset_to_online()?)
    }

    fn state(&self) -> State {
        let mut s = momentum_state("key_encoder", &self.target);
        s.extend(queue_state("queue", &self.queue));
        s
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        load_momentum("key_encoder", &self.target, state)?;
        load_queue("queue", &mut self.queue, state)
    }

    fn backbone(&self) -> &dyn Backbone {
        self.encoder.backbone()
    }

    fn backbone_mut(&mut self) -> &mut dyn Backbone {
        self.encoder.backbone_mut()
    }
}
