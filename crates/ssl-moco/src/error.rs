//! The error type of ssl-moco.

/// What can go wrong with a queue or a momentum encoder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MocoError {
    /// A size or setting is out of its valid range.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was wrong, for example `queue length 0`.
        what: String,
        /// What it must satisfy.
        reason: &'static str,
    },
    /// Keys of the wrong shape for the queue.
    #[error("keys {got:?} do not fit a queue of dimension {dim}: expected [N, {dim}]")]
    KeyShape {
        /// The shape of the keys given.
        got: Vec<i64>,
        /// The queue's feature dimension.
        dim: i64,
    },
    /// The closure that builds a momentum encoder's network failed.
    #[error("building the momentum encoder's network: {0}")]
    Build(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A target variable has no online variable to follow.
    #[error("momentum encoder variable {name}: {reason}")]
    Pairing {
        /// The variable's name, for example `backbone.conv1.weight`.
        name: String,
        /// What did not match.
        reason: String,
    },
    /// An error raised by libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

/// `Result` with [`MocoError`] as the default error.
pub type Result<T, E = MocoError> = std::result::Result<T, E>;
