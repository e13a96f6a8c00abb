//! The error type of ssl-models.

/// What can go wrong when building a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A config field is out of its valid range.
    #[error("invalid model config: {model}.{field} = {value}: {reason}")]
    InvalidConfig {
        /// The model, for example `resnet`.
        model: &'static str,
        /// The field, as spelled in the config struct (and YAML).
        field: &'static str,
        /// The offending value, formatted.
        value: String,
        /// What the field must satisfy.
        reason: &'static str,
    },
    /// An error raised by libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

/// `Result` with [`ModelError`] as the default error.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
