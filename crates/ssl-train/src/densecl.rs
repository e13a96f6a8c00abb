//! DenseCL: MoCo v2's global loss plus a dense loss between matched locations of the two
//! views' last feature maps.

use serde::{Deserialize, Serialize};
use ssl_aug::Compose;
use ssl_loss::{l2_normalize, DenseClLoss, DenseClLossConfig, InfoNce, InfoNceConfig};
use ssl_moco::{BufferRule, FeatureQueue, MomentumEncoder};
use ssl_models::{Backbone, BackboneConfig, ProjectionHead};
use tch::nn::{self, ModuleT, VarStore};
use tch::{Kind, Tensor};

use crate::config::HeadConfig;
use crate::error::{check_at_least, check_unit_interval, invalid};
use crate::method::{Batch, Method, StepContext, StepOutput};
use crate::moco::in_shuffled_sub_batches;
use crate::state::{load_momentum, load_queue, momentum_state, queue_state, State, StateDict};
use crate::{Config, Result};

/// DenseCL's settings (`method: {name: densecl, ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseClConfig {
    /// The global head on the pooled features (paper: MoCo v2's, 2048 hidden, 128 out).
    pub head: HeadConfig,
    /// The dense head, applied at every location of the last feature map (paper: 1×1 convs,
    /// 2048 hidden, 128 out, no BatchNorm; `batch_norm` must be false).
    pub dense_head: HeadConfig,
    /// τ of both InfoNCE terms (paper: 0.2).
    pub temperature: f64,
    /// K of the global keys' queue, and of the dense one unless `dense_queue_size` is set
    /// (paper: 65,536 each).
    pub queue_size: i64,
    /// Optional K of the queue of the dense keys' per-image means; absent or `null`:
    /// `queue_size`. The dense logits are `[N·S, K]`, S locations per image, so on a CPU this
    /// queue sets most of what a step costs beyond MoCo v2's.
    #[serde(default)]
    pub dense_queue_size: Option<i64>,
    /// The key encoder's EMA coefficient m (paper: 0.999).
    pub momentum: f64,
    /// λ: L = (1 − λ) L_global + λ L_dense (paper: 0.5).
    pub dense_weight: f64,
    /// Steps with λ = 0 at the start, while the backbone's features (which pick each
    /// location's match) are still random; the authors' code: the first 1,000 iterations.
    pub dense_warmup_steps: u64,
    /// Sub-batches of the shuffled key batch for the key encoder's BatchNorm (as MoCo's).
    pub key_bn_splits: i64,
}

impl DenseClConfig {
    /// Checks every field; errors name `method.<field>`.
    ///
    /// # Errors
    /// [`crate::TrainError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        self.head.validate("method.head")?;
        self.dense_head.validate("method.dense_head")?;
        if self.dense_head.batch_norm || self.dense_head.output_batch_norm {
            return invalid(
                "method.dense_head.batch_norm",
                true,
                "the dense head has no BatchNorm",
            );
        }
        if self.dense_head.output_dim != self.head.output_dim {
            return invalid(
                "method.dense_head.output_dim",
                self.dense_head.output_dim,
                "must equal method.head.output_dim (both queues hold keys of one width)",
            );
        }
        InfoNceConfig { temperature: self.temperature }.build()?;
        check_at_least("method.queue_size", self.queue_size, 1)?;
        if let Some(k) = self.dense_queue_size {
            check_at_least("method.dense_queue_size", k, 1)?;
        }
        check_unit_interval("method.momentum", self.momentum)?;
        check_unit_interval("method.dense_weight", self.dense_weight)?;
        check_at_least("method.key_bn_splits", self.key_bn_splits, 1)
    }
}

/// Backbone, global head and dense head under one path (`backbone.*`, `head.*`, `dense.*`),
/// so the momentum copy pairs with it by name.
#[derive(Debug)]
pub struct DenseEncoder {
    backbone: Box<dyn Backbone>,
    head: ProjectionHead,
    dense: ProjectionHead,
}

/// What [`DenseEncoder::forward_all`] computes for a batch.
#[derive(Debug)]
pub struct DenseOutput {
    /// Pooled backbone features `[N, F]`.
    pub features: Tensor,
    /// The last feature map, flattened: `[N, F, S]`.
    pub feature_map: Tensor,
    /// The global projection `[N, D]`.
    pub global: Tensor,
    /// The dense projections `[N, D, S]`.
    pub dense: Tensor,
}

impl DenseEncoder {
    /// Builds the three parts under `p`.
    ///
    /// # Errors
    /// The parts' config errors.
    pub fn new(p: &nn::Path, backbone: &BackboneConfig, c: &DenseClConfig) -> Result<Self> {
        let backbone = backbone.build(&(p / "backbone"))?;
        let head = c.head.build(&(p / "head"), backbone.feature_dim())?;
        let dense = c.dense_head.build(&(p / "dense"), backbone.feature_dim())?;
        Ok(Self { backbone, head, dense })
    }

    /// Features, feature map, global and dense projections of `x`.
    pub fn forward_all(&self, x: &Tensor, train: bool) -> DenseOutput {
        let map = self.backbone.feature_map_t(x, train); // [N, F, H, W]
        let (n, f) = (map.size()[0], map.size()[1]);
        let map = map.flatten(2, 3); // [N, F, S]
        let s = map.size()[2];
        let features = map.mean_dim([2i64].as_slice(), false, Kind::Float); // [N, F]
        let global = self.head.forward_t(&features, train); // [N, D]
        let per_location = map.transpose(1, 2).reshape([n * s, f]); // [N·S, F]
        let dense = self.dense.forward_t(&per_location, train); // [N·S, D]
        let dense = dense.view([n, s, -1]).transpose(1, 2); // [N, D, S]
        DenseOutput { features, feature_map: map, global, dense }
    }
}

impl ModuleT for DenseEncoder {
    /// The global projection `[N, D]`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_all(x, train).global
    }
}

/// DenseCL on the backbone of `model.backbone`.
///
/// Paper: Wang, Zhang, Shen, Kong, Li, "Dense Contrastive Learning for Self-Supervised Visual
/// Pre-Training", CVPR 2021, <https://arxiv.org/abs/2011.09157>, Eq. (1)–(4) and its
/// `densecl.py`.
///
/// ```text
/// query view 1, key view 2 (momentum encoder, no gradient):
/// L_global = InfoNCE(q, k; queue_g)                                   (MoCo v2)
/// j(i) = argmax_j cos(Fq[:, i], Fk[:, j])     on the backbone feature maps
/// L_dense = 1/S Σᵢ InfoNCE(rᵢ, t_{j(i)}; queue_d)                     r, t: dense projections
/// L = (1 − λ) L_global + λ L_dense           (λ = 0 for the first dense_warmup_steps)
/// after the step: θ_k ← m θ_k + (1 − m) θ_q; enqueue k̂ into queue_g and mean_S(t̂) into queue_d
/// ```
///
/// One direction, as the paper's code. Pooled features feed the global head; the dense head
/// is an MLP at every location (the paper's 1×1 convolutions). The keys, their feature maps
/// and the correspondence all come from the momentum encoder, on `key_bn_splits` shuffled
/// sub-batches as MoCo's. Logged: `loss_global`, `loss_dense`.
#[derive(Debug)]
pub struct DenseCl {
    encoder: DenseEncoder,
    target: MomentumEncoder<DenseEncoder>,
    global_queue: FeatureQueue,
    dense_queue: FeatureQueue,
    info_nce: InfoNce,
    dense_loss: DenseClLoss,
    cfg: DenseClConfig,
    views: [Compose; 2],
    pending: Option<(Tensor, Tensor)>,
}

impl DenseCl {
    /// Builds the query encoder in `vs`, its momentum copy and both queues.
    ///
    /// # Errors
    /// Config errors naming the field; the parts' errors.
    pub fn new(vs: &VarStore, cfg: &Config, c: &DenseClConfig) -> Result<Self> {
        c.validate()?;
        let build = |p: &nn::Path| DenseEncoder::new(p, &cfg.model.backbone, c);
        let encoder = build(&vs.root())?;
        let target = MomentumEncoder::new(vs, BufferRule::Own, build)?;
        let d = c.head.output_dim;
        let global_queue = FeatureQueue::new(c.queue_size, d, Kind::Float, vs.device())?;
        let dense_k = c.dense_queue_size.unwrap_or(c.queue_size);
        let dense_queue = FeatureQueue::new(dense_k, d, Kind::Float, vs.device())?;
        let info_nce = InfoNceConfig { temperature: c.temperature }.build()?;
        let dense_loss = DenseClLossConfig { temperature: c.temperature }.build()?;
        Ok(Self {
            encoder,
            target,
            global_queue,
            dense_queue,
            info_nce,
            dense_loss,
            cfg: *c,
            views: cfg.two_views()?,
            pending: None,
        })
    }

    /// The momentum (key) encoder.
    pub fn key_encoder(&self) -> &MomentumEncoder<DenseEncoder> {
        &self.target
    }

    /// The key encoder's outputs for `x`, on `key_bn_splits` sub-batches of a random
    /// permutation, put back in order; no graph.
    fn keys(&self, x: &Tensor) -> DenseOutput {
        tch::no_grad(|| {
            let key = self.target.module();
            let split = |c: &Tensor| {
                let o = key.forward_all(c, true);
                vec![o.features, o.feature_map, o.global, o.dense]
            };
            let mut o = in_shuffled_sub_batches(x, self.cfg.key_bn_splits, split).into_iter();
            let mut next = || o.next().expect("four outputs");
            DenseOutput { features: next(), feature_map: next(), global: next(), dense: next() }
        })
    }
}

impl Method for DenseCl {
    fn views(&self) -> &[Compose] {
        &self.views
    }

    fn step(&mut self, batch: &Batch<'_>, ctx: &StepContext) -> Result<StepOutput> {
        let views = batch.views;
        let q = self.encoder.forward_all(&views[0], true);
        let k = self.keys(&views[1]);
        let k_global = l2_normalize(&k.global, 1e-12); // [N, D]
        let negatives_g = self.global_queue.negatives(); // before any enqueue
        let negatives_d = self.dense_queue.negatives();
        let global = self.info_nce.f_forward_with_negatives(&q.global, &k_global, &negatives_g)?;
        let dense = self.dense_loss.f_forward(
            &q.dense,
            &k.dense,
            &q.feature_map,
            &k.feature_map,
            &negatives_d,
        )?;
        let lambda =
            if ctx.step < self.cfg.dense_warmup_steps { 0.0 } else { self.cfg.dense_weight };
        let (lg, ld) = (global.double_value(&[]), dense.double_value(&[]));
        let loss = global * (1.0 - lambda) + dense * lambda;
        let k_dense_mean =
            l2_normalize(&k.dense.mean_dim([2i64].as_slice(), false, Kind::Float), 1e-12);
        self.pending = Some((k_global, k_dense_mean));
        Ok(StepOutput {
            loss,
            embeddings: Some(l2_normalize(&q.global.detach(), 1e-12)),
            features: Some(q.features.detach()),
            logs: vec![("loss_global", lg), ("loss_dense", ld)],
        })
    }

    fn after_step(&mut self, _ctx: &StepContext) -> Result<()> {
        self.target.update(self.cfg.momentum)?;
        if let Some((g, d)) = self.pending.take() {
            self.global_queue.enqueue(&g)?;
            self.dense_queue.enqueue(&d)?;
        }
        Ok(())
    }

    fn reset_targets(&mut self) -> Result<()> {
        Ok(self.target.reset_to_online()?)
    }

    fn state(&self) -> State {
        let mut s = momentum_state("key_encoder", &self.target);
        s.extend(queue_state("global_queue", &self.global_queue));
        s.extend(queue_state("dense_queue", &self.dense_queue));
        s
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        load_momentum("key_encoder", &self.target, state)?;
        load_queue("global_queue", &mut self.global_queue, state)?;
        load_queue("dense_queue", &mut self.dense_queue, state)
    }

    fn backbone(&self) -> &dyn Backbone {
        &*self.encoder.backbone
    }

    fn backbone_mut(&mut self) -> &mut dyn Backbone {
        &mut *self.encoder.backbone
    }
}
