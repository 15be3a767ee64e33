//! Classifies AWS SDK errors (any service: the error type is shared by every `aws-sdk-*` crate) into
//! [`PortError`], so each adapter maps failures the same way and the use cases can turn them into
//! typed step errors the state machine retries or branches on.

use aws_sdk_bedrock::config::http::HttpResponse;
use aws_sdk_bedrock::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use distillery_core::ports::PortError;

/// Maps an SDK error to a [`PortError`]. `what` names the call (and resource) for the message.
pub fn port_error<E>(what: &str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        // The request never got an answer. The SDK's full context is a page of nested Debug output
        // (connector, IMDS, credential chain), so the message keeps only the innermost cause; the
        // whole chain is logged at debug level (RUST_LOG=debug).
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            tracing::debug!(error = %DisplayErrorContext(&err), "{what}: no answer");
            PortError::Transient(format!("{what}: {}", unanswered_cause(&err)))
        }
        SdkError::ResponseError(_) => {
            PortError::Transient(format!("{what}: {}", DisplayErrorContext(&err)))
        }
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or("");
            let message = se.err().message().unwrap_or("");
            let text = if code.is_empty() {
                format!("{what}: HTTP {status} {message}")
            } else {
                format!("{what}: {code}: {message}")
            };
            classify(code, status, text)
        }
        _ => PortError::Other(format!("{what}: {}", DisplayErrorContext(&err))),
    }
}

/// One line for a request that got no answer: what kind of failure, and its innermost cause.
fn unanswered_cause<E, R>(err: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let kind = match err {
        SdkError::TimeoutError(_) => "timed out",
        SdkError::DispatchFailure(df) if df.is_io() => "cannot reach the endpoint",
        SdkError::DispatchFailure(df) if df.is_timeout() => "timed out reaching the endpoint",
        SdkError::DispatchFailure(df) if df.is_user() => "the request could not be built",
        _ => "the request was not sent",
    };
    let mut chain: Vec<String> = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = next {
        chain.push(e.to_string());
        next = e.source();
    }
    let cause = chain.last().cloned().unwrap_or_default();
    if chain.iter().any(|m| m.contains("loading credentials")) {
        format!("no AWS credentials could be loaded ({cause})")
    } else {
        format!("{kind} ({cause})")
    }
}

/// The classification itself, by error code first and HTTP status second (some operations, like
/// S3 HeadObject, return a bare status without a code).
pub fn classify(code: &str, status: u16, text: String) -> PortError {
    match code {
        "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "ProvisionedThroughputExceededException"
        | "SlowDown" => PortError::Throttled(text),
        "ServiceQuotaExceededException" | "LimitExceededException" => {
            PortError::QuotaExceeded(text)
        }
        "ValidationException" | "InvalidParameterValue" | "InvalidRequest" | "InvalidArgument" => {
            PortError::Validation(text)
        }
        "ResourceNotFoundException" | "NoSuchKey" | "NoSuchBucket" | "NotFound" => {
            PortError::NotFound(text)
        }
        "ConflictException"
        | "ConditionalCheckFailedException"
        | "TransactionConflictException"
        | "ResourceInUseException" => PortError::Conflict(text),
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch" => PortError::AccessDenied(text),
        "InternalServerException"
        | "InternalServerError"
        | "InternalError"
        | "ServiceUnavailable"
        | "ServiceUnavailableException" => PortError::Transient(text),
        _ => match status {
            429 => PortError::Throttled(text),
            404 => PortError::NotFound(text),
            403 => PortError::AccessDenied(text),
            409 => PortError::Conflict(text),
            400 => PortError::Validation(text),
            500..=599 => PortError::Transient(text),
            _ => PortError::Other(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_win_over_status() {
        assert!(matches!(
            classify("ThrottlingException", 400, "x".into()),
            PortError::Throttled(_)
        ));
        assert!(matches!(
            classify("ServiceQuotaExceededException", 400, "x".into()),
            PortError::QuotaExceeded(_)
        ));
        assert!(matches!(
            classify("ConditionalCheckFailedException", 400, "x".into()),
            PortError::Conflict(_)
        ));
        assert!(matches!(
            classify("", 404, "x".into()),
            PortError::NotFound(_)
        ));
        assert!(matches!(
            classify("", 503, "x".into()),
            PortError::Transient(_)
        ));
        assert!(matches!(
            classify("Weird", 418, "x".into()),
            PortError::Other(_)
        ));
    }
}
