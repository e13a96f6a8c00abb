//! Transfer: kNN and the linear probe of a frozen backbone on another labelled image set,
//! scikit-learn's 8 × 8 handwritten digits, with the same code as Fashion-MNIST's evaluation.

use std::time::Instant;

use ssl_aug::ResizeConfig;
use ssl_data::Digits;
use tch::nn::ModuleT;
use tch::{Device, Tensor};

use crate::eval::{extract_features, pixels_as_features, KnnConfig};
use crate::evaluate::score_labelled_features;
use crate::{Config, Result, Scores};

/// kNN neighbours on the digits: 1,198 memory images (about 120 a class), where Fashion-MNIST's
/// 200 would reach across classes.
pub const TRANSFER_KNN_K: i64 = 20;

/// The digits split once, as the file orders them: the first two thirds (1,198 images) are the
/// memory bank and the probe's training set, the last third (599) the queries.
#[derive(Debug)]
pub struct TransferData {
    train: (Tensor, Tensor),
    test: (Tensor, Tensor),
}

impl TransferData {
    /// Splits `digits` into the fixed two thirds and one third.
    pub fn new(digits: &Digits) -> Self {
        let (x, y) = (digits.to_tensor(), digits.labels_tensor());
        let n = x.size()[0];
        let m = n * 2 / 3;
        Self {
            train: (x.narrow(0, 0, m), y.narrow(0, 0, m)),
            test: (x.narrow(0, m, n - m), y.narrow(0, m, n - m)),
        }
    }

    /// How many memory (training) and query images the scores use.
    pub fn sizes(&self) -> (i64, i64) {
        (self.train.0.size()[0], self.test.0.size()[0])
    }

    /// Scores a frozen network: the 8 px digits are upsampled to the size Fashion-MNIST's
    /// evaluation feeds it (`eval.resize`, else the evaluation images' size) and encoded in eval mode.
    ///
    /// # Errors
    /// An invalid resize setting.
    pub fn score_network(
        &self,
        net: &(impl ModuleT + ?Sized),
        cfg: &Config,
        device: Device,
    ) -> Result<Scores> {
        let start = Instant::now();
        let resize = ResizeConfig { size: cfg.eval_image_size(), antialias: false }.build()?;
        let train = extract_features(net, &self.train.0, 1024, Some(&resize), device);
        let test = extract_features(net, &self.test.0, 1024, Some(&resize), device);
        Ok(self.score(&train, &test, cfg, start))
    }

    /// Scores the 64 raw pixels.
    pub fn score_pixels(&self, cfg: &Config) -> Scores {
        let start = Instant::now();
        let train = pixels_as_features(&self.train.0);
        let test = pixels_as_features(&self.test.0);
        self.score(&train, &test, cfg, start)
    }

    fn score(&self, train: &Tensor, test: &Tensor, cfg: &Config, start: Instant) -> Scores {
        let knn = KnnConfig { k: TRANSFER_KNN_K, ..cfg.eval.knn };
        let train = (train, &self.train.1);
        score_labelled_features(train, (test, &self.test.1), knn, cfg, start)
    }
}
