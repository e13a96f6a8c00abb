//! The error type of ssl-loss.

/// What can go wrong when building or running a loss.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LossError {
    /// A config field is out of its valid range.
    #[error("invalid loss config: {field} = {value}: {reason}")]
    InvalidConfig {
        /// The field, as spelled in the config struct (and YAML).
        field: &'static str,
        /// The offending value, formatted.
        value: String,
        /// What the field must satisfy.
        reason: &'static str,
    },
    /// Inputs whose shapes break the loss's contract; the message names them.
    #[error("{loss}: {detail}")]
    Shape {
        /// The loss (or function) that was called.
        loss: &'static str,
        /// The offending shapes and what they must be.
        detail: String,
    },
    /// An error raised by libtorch.
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

/// `Result` with [`LossError`] as the default error.
pub type Result<T, E = LossError> = std::result::Result<T, E>;

/// `Ok` when `ok`, else [`LossError::Shape`] for `loss` with the message `detail()`.
pub(crate) fn ensure(ok: bool, loss: &'static str, detail: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(LossError::Shape { loss, detail: detail() })
    }
}

/// Checks that a softmax temperature τ is a finite positive number.
pub(crate) fn check_temperature(temperature: f64) -> Result<()> {
    if temperature.is_finite() && temperature > 0.0 {
        Ok(())
    } else {
        Err(LossError::InvalidConfig {
            field: "temperature",
            value: temperature.to_string(),
            reason: "must be a finite number > 0",
        })
    }
}
