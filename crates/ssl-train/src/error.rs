//! The error type of ssl-train's library part.

use std::path::PathBuf;

/// What can go wrong when configuring or running training.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The config file cannot be read.
    #[error("reading config {path}: {source}")]
    ConfigIo {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The YAML does not parse, has an unknown key or a value of the wrong type.
    #[error("config {path}: {message}")]
    ConfigParse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the dotted key where known.
        message: String,
    },
    /// A `--set key=value` override is malformed or names no key of the schema.
    #[error("override `{spec}`: {reason}")]
    Override {
        /// The override as given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// A value parses but is out of range.
    #[error("config field {field} = {value}: {reason}")]
    Invalid {
        /// The dotted key.
        field: String,
        /// The value given.
        value: String,
        /// What it must satisfy.
        reason: String,
    },
    /// A file of the run directory cannot be written or read.
    #[error("run directory file {path}: {source}")]
    RunIo {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A resumable checkpoint that is truncated, fails its checksum or lacks a tensor the run
    /// needs.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A step's loss or gradient is not finite (`train.on_non_finite: stop`).
    #[error("step {step}: {what} is not finite; {last_good}")]
    NonFinite {
        /// The step (0-based).
        step: u64,
        /// `loss` or the first variable whose gradient is not finite.
        what: String,
        /// The last good checkpoint, or that there is none.
        last_good: String,
    },
    /// An error from ssl-data.
    #[error(transparent)]
    Data(#[from] ssl_data::DataError),
    /// An error from ssl-models.
    #[error(transparent)]
    Model(#[from] ssl_models::ModelError),
    /// An error from ssl-loss.
    #[error(transparent)]
    Loss(#[from] ssl_loss::LossError),
    /// An error from ssl-moco.
    #[error(transparent)]
    Moco(#[from] ssl_moco::MocoError),
    /// An error from ssl-aug.
    #[error(transparent)]
    Aug(#[from] ssl_aug::AugError),
    /// An error raised by libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

/// `Result` with [`TrainError`] as the default error.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// [`TrainError::Invalid`] for the dotted key `field`.
pub(crate) fn invalid<T>(field: &str, value: impl ToString, reason: &str) -> Result<T> {
    Err(TrainError::Invalid {
        field: field.into(),
        value: value.to_string(),
        reason: reason.into(),
    })
}

/// `Ok` when `value` is in [0, 1] (a momentum, a weight), else [`TrainError::Invalid`].
pub(crate) fn check_unit_interval(field: &str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        invalid(field, value, "must be in [0, 1]")
    }
}

/// `Ok` when `value ≥ min` (a size, a count), else [`TrainError::Invalid`].
pub(crate) fn check_at_least(field: &str, value: i64, min: i64) -> Result<()> {
    if value >= min {
        Ok(())
    } else {
        invalid(field, value, &format!("must be ≥ {min}"))
    }
}

/// A leaf crate's config error (ssl-loss, ssl-models, ssl-aug's ops outside a view) found
/// under the YAML section `section`: [`TrainError::Invalid`] naming the dotted key
/// (`method.loss.temperature`); any other error unchanged.
pub(crate) fn at_key(section: &str, e: impl Into<TrainError>) -> TrainError {
    let (field, value, reason) = match e.into() {
        TrainError::Loss(ssl_loss::LossError::InvalidConfig { field, value, reason }) => {
            (field, value, reason)
        }
        TrainError::Model(ssl_models::ModelError::InvalidConfig {
            field, value, reason, ..
        }) => (field, value, reason),
        TrainError::Aug(ssl_aug::AugError::InvalidConfig { field, value, reason, .. }) => {
            (field, value, reason)
        }
        other => return other,
    };
    TrainError::Invalid { field: format!("{section}.{field}"), value, reason: reason.into() }
}

/// An augmentation op's config error inside the view at `section` (`augment`,
/// `augment_view2`): [`TrainError::Invalid`] naming the view's key for the op
/// (`augment.flip.p`); any other error unchanged.
pub(crate) fn at_view_key(section: &str, e: ssl_aug::AugError) -> TrainError {
    match e {
        ssl_aug::AugError::InvalidConfig { op, field, value, reason } => {
            let key = match op {
                "random_resized_crop" => "crop",
                "horizontal_flip" => "flip",
                "gaussian_blur" => "blur",
                other => other,
            };
            TrainError::Invalid {
                field: format!("{section}.{key}.{field}"),
                value,
                reason: reason.into(),
            }
        }
        other => other.into(),
    }
}
