//! Evaluation of a frozen backbone: feature extraction, kNN and the linear probe.

mod features;
mod knn;
mod linear_probe;

pub use features::{extract_features, pixels_as_features};
pub use knn::{knn_top1, KnnConfig};
pub use linear_probe::{
    fit_linear_classifier, linear_probe, LinearClassifier, LinearProbeConfig, LinearProbeReport,
};
