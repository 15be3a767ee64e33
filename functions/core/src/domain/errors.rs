//! Typed step errors. Each carries a stable `errorType` string that the state machine's Retry and
//! Catch clauses match on, so never rename a variant's string without changing `statemachine/` too.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorType {
    /// The dataset broke a rule; nothing was launched.
    DatasetInvalid,
    /// Settings (defaults, S3 metadata overrides, CLI flags) are invalid or unsupported.
    ConfigInvalid,
    /// Bedrock (or another service) throttled us: retry with backoff.
    Throttled,
    /// A service quota is exhausted (e.g. concurrent customization jobs): retry much later.
    QuotaExceeded,
    /// A cost guardrail refused the action (model units, commitment).
    GuardrailViolation,
    /// A run, object or job that must exist does not.
    NotFound,
    /// A conditional write lost a race, or Bedrock reported a conflict.
    Conflict,
    /// Permissions are missing.
    AccessDenied,
    /// The input is not one this function understands: not JSON, the wrong shape, an unknown event
    /// source or milestone.
    InvalidInput,
    /// A transient fault in a dependency (5xx, timeouts): safe to retry.
    Transient,
    /// Anything else; not retried.
    Internal,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::DatasetInvalid => "DatasetInvalid",
            ErrorType::ConfigInvalid => "ConfigInvalid",
            ErrorType::Throttled => "Throttled",
            ErrorType::QuotaExceeded => "QuotaExceeded",
            ErrorType::GuardrailViolation => "GuardrailViolation",
            ErrorType::NotFound => "NotFound",
            ErrorType::Conflict => "Conflict",
            ErrorType::AccessDenied => "AccessDenied",
            ErrorType::InvalidInput => "InvalidInput",
            ErrorType::Transient => "Transient",
            ErrorType::Internal => "Internal",
        }
    }

    /// Whether the state machine retries this error type.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorType::Throttled | ErrorType::QuotaExceeded | ErrorType::Transient
        )
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error every use case returns. The Lambda glue turns it into a `Diagnostic` whose
/// `errorType` is [`ErrorType::as_str`] and whose `errorMessage` is `message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct StepError {
    pub error_type: ErrorType,
    pub message: String,
}

impl StepError {
    pub fn new(error_type: ErrorType, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
        }
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorType::ConfigInvalid, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorType::Internal, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorType::NotFound, message)
    }
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorType::InvalidInput, message)
    }
    /// The request does not fit the run's current status (see `Run::refuse`).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorType::Conflict, message)
    }

    /// The same error with what was being done put in front: `"{context}: {message}"`. The type is
    /// kept (the state machine routes on it). A port error gets its context the same way:
    /// `.map_err(|e| e.context("recording the run"))` (see `PortError::context`).
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_goes_in_front_and_keeps_the_type() {
        let e = StepError::new(ErrorType::Throttled, "slow down")
            .context("reading the run")
            .context(format_args!("run {}", 7));
        assert_eq!(e.error_type, ErrorType::Throttled);
        assert_eq!(e.message, "run 7: reading the run: slow down");
    }
}
