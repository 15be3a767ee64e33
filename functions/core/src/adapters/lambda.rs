//! Lambda glue shared by the five binaries: JSON tracing and typed errors.

use lambda_runtime::Diagnostic;

use crate::domain::errors::StepError;

/// JSON logs (CloudWatch-friendly), level from `RUST_LOG` (default `info`), no ANSI colours, no
/// timestamps of our own (Lambda adds them).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .try_init();
}

/// The `errorType` the state machine matches in Retry/Catch is the [`crate::domain::errors::ErrorType`].
impl From<StepError> for Diagnostic {
    fn from(e: StepError) -> Self {
        Diagnostic {
            error_type: e.error_type.as_str().to_string(),
            error_message: e.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::errors::ErrorType;

    #[test]
    fn diagnostic_keeps_the_error_type() {
        let d: Diagnostic = StepError::new(ErrorType::Throttled, "slow down").into();
        assert_eq!(d.error_type, "Throttled");
        assert_eq!(d.error_message, "slow down");
    }
}
