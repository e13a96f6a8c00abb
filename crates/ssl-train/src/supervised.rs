//! The supervised ceiling: cross-entropy on the labels with the same backbone, augmentations
//! and budget as the self-supervised methods.

use serde::{Deserialize, Serialize};
use ssl_aug::Compose;
use ssl_loss::l2_normalize;
use ssl_models::Backbone;
use tch::nn::{self, Module, VarStore};
use tch::Reduction;

use crate::error::{check_at_least, invalid};
use crate::method::{Batch, Method, StepContext, StepOutput};
use crate::{Config, Result, TrainError};

/// The supervised method's settings (`method: {name: supervised, ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisedConfig {
    /// Classes of the labels (Fashion-MNIST: 10).
    pub num_classes: i64,
    /// Label smoothing ε of the cross-entropy (0: none).
    pub label_smoothing: f64,
}

impl SupervisedConfig {
    /// Checks every field; errors name `method.<field>`.
    ///
    /// # Errors
    /// [`TrainError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        check_at_least("method.num_classes", self.num_classes, 2)?;
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return invalid("method.label_smoothing", self.label_smoothing, "must be in [0, 1)");
        }
        Ok(())
    }
}

/// Supervised training of the backbone with a linear classifier on its pooled features, on one
/// augmented view per image (`augment`).
///
/// ```text
/// h = f(t(x)),  ŷ = W h + b,  L = CE(ŷ, y) (label smoothing ε)
/// ```
///
/// The ceiling every self-supervised row is read against: the same backbone, views and
/// budget, with the labels the others never see. Evaluation then scores `f` like any method's
/// backbone (the classifier is not used).
#[derive(Debug)]
pub struct Supervised {
    backbone: Box<dyn Backbone>,
    classifier: nn::Linear,
    cfg: SupervisedConfig,
    views: [Compose; 1],
}

impl Supervised {
    /// Builds `backbone.*` and `classifier.*` under `vs`'s root.
    ///
    /// # Errors
    /// Config errors naming the field; the backbone's and the views' errors.
    pub fn new(vs: &VarStore, cfg: &Config, c: &SupervisedConfig) -> Result<Self> {
        c.validate()?;
        let backbone = cfg.model.backbone.build(&(vs.root() / "backbone"))?;
        let classifier = nn::linear(
            vs.root() / "classifier",
            backbone.feature_dim(),
            c.num_classes,
            Default::default(),
        );
        Ok(Self { backbone, classifier, cfg: *c, views: [cfg.augment.build()?] })
    }
}

impl Method for Supervised {
    fn views(&self) -> &[Compose] {
        &self.views
    }

    fn step(&mut self, batch: &Batch<'_>, _ctx: &StepContext) -> Result<StepOutput> {
        let labels = batch.labels.ok_or_else(|| TrainError::Invalid {
            field: "method.name".into(),
            value: "supervised".into(),
            reason: "supervised training needs the images' labels, and the batch has none".into(),
        })?;
        let h = self.backbone.forward_t(&batch.views[0], true); // [N, F]
        let logits = self.classifier.forward(&h); // [N, classes]
        let labels = labels.to_device(logits.device());
        let loss = logits.cross_entropy_loss::<tch::Tensor>(
            &labels,
            None,
            Reduction::Mean,
            -100,
            self.cfg.label_smoothing,
        );
        let accuracy = logits.argmax(1, false).eq_tensor(&labels).to_kind(tch::Kind::Float);
        Ok(StepOutput {
            loss,
            embeddings: Some(l2_normalize(&h.detach(), 1e-12)),
            features: Some(h.detach()),
            logs: vec![("train_top1", accuracy.mean(tch::Kind::Float).double_value(&[]))],
        })
    }

    fn uses_labels(&self) -> bool {
        true
    }

    fn backbone(&self) -> &dyn Backbone {
        &*self.backbone
    }

    fn backbone_mut(&mut self) -> &mut dyn Backbone {
        &mut *self.backbone
    }
}
