//! The error type of ssl-aug.

/// What can go wrong when building an augmentation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AugError {
    /// A config field is out of its valid range.
    #[error("invalid augmentation config: {op}.{field} = {value}: {reason}")]
    InvalidConfig {
        /// The op, for example `horizontal_flip`.
        op: &'static str,
        /// The field, as spelled in the config struct (and YAML).
        field: &'static str,
        /// The offending value, formatted.
        value: String,
        /// What the field must satisfy.
        reason: &'static str,
    },
    /// An input whose shape breaks the op's contract; the message names both shapes.
    #[error("{op}: input {got:?}, expected {expected}")]
    Shape {
        /// The op.
        op: String,
        /// The input's shape.
        got: Vec<i64>,
        /// The shape the op takes.
        expected: String,
    },
    /// An error raised by libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

/// `Result` with [`AugError`] as the default error.
pub type Result<T, E = AugError> = std::result::Result<T, E>;

/// Checks that a probability lies in `[0, 1]`.
pub(crate) fn check_probability(op: &'static str, field: &'static str, p: f64) -> Result<()> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(AugError::InvalidConfig {
            op,
            field,
            value: p.to_string(),
            reason: "must be in [0, 1]",
        })
    }
}
