//! The kNN monitor run after every epoch: the first labelled training images of the evaluation
//! source as memory, the last ones (held out of the memory) as queries. The test set is never
//! read during training.

use std::time::Instant;

use ssl_models::Backbone;
use tch::{Device, Tensor};

use crate::data_source::Part;
use crate::eval::{extract_features, knn_top1};
use crate::evaluate::class_count;
use crate::{Config, Result, TrainError};

/// A fixed memory bank and fixed queries, both training images with their labels.
#[derive(Debug)]
pub(crate) struct Monitor {
    bank: Tensor,
    bank_labels: Tensor,
    queries: Tensor,
    query_labels: Tensor,
    classes: i64,
}

impl Monitor {
    /// The monitor of `cfg.eval` on the evaluation source's labelled training images
    /// ([`Config::eval_source`]), or `None` when it is off.
    ///
    /// # Errors
    /// [`TrainError::Invalid`] when the bank and the queries would overlap; the source's
    /// errors (a file, or unlabelled images).
    pub(crate) fn new(cfg: &Config) -> Result<Option<Self>> {
        let e = &cfg.eval;
        if e.monitor_bank == 0 || e.monitor_queries == 0 {
            return Ok(None);
        }
        let (source, key) = cfg.eval_source();
        let (images, labels) = source.load_labelled(Part::Train, key, cfg.data.workers)?;
        let n = images.size()[0];
        if e.monitor_bank + e.monitor_queries > n {
            return Err(TrainError::Invalid {
                field: "eval.monitor_bank".into(),
                value: format!("{} (+ monitor_queries {})", e.monitor_bank, e.monitor_queries),
                reason: format!(
                    "bank and queries must not overlap: together ≤ {n} training images"
                ),
            });
        }
        let q = e.monitor_queries;
        Ok(Some(Self {
            bank: images.narrow(0, 0, e.monitor_bank), // [bank, C, H, W]
            bank_labels: labels.narrow(0, 0, e.monitor_bank),
            queries: images.narrow(0, n - q, q), // [q, C, H, W]
            query_labels: labels.narrow(0, n - q, q),
            classes: class_count(&[&labels]),
        }))
    }

    /// The number of classes of the labels.
    pub(crate) fn classes(&self) -> i64 {
        self.classes
    }

    /// The queries' labels (`[q]`).
    pub(crate) fn query_labels(&self) -> &Tensor {
        &self.query_labels
    }

    /// kNN top-1 of the queries against the bank through `backbone`, the seconds it took, and
    /// the queries' features (`[q, F]`, for the online probe).
    pub(crate) fn score(
        &self,
        backbone: &dyn Backbone,
        cfg: &Config,
        device: Device,
    ) -> (f64, f64, Tensor) {
        let start = Instant::now();
        let resize = cfg.eval.resize_op();
        let bank = extract_features(backbone, &self.bank, 1024, resize.as_ref(), device);
        let queries = extract_features(backbone, &self.queries, 1024, resize.as_ref(), device);
        let acc = knn_top1(
            &bank,
            &self.bank_labels,
            &queries,
            &self.query_labels,
            self.classes,
            cfg.eval.knn,
        );
        (acc, start.elapsed().as_secs_f64(), queries)
    }
}
