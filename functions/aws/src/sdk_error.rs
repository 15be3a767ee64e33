//! Classifies AWS SDK errors (any service: the error type is shared by every `aws-sdk-*` crate) into
//! [`PortError`], so each adapter maps failures the same way and the use cases can turn them into
//! typed step errors the state machine retries or branches on.

use aws_sdk_bedrock::config::http::HttpResponse;
use aws_sdk_bedrock::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use distillery_core::ports::PortError;

/// Maps an SDK error to a [`PortError`]. `what` names the call (and resource) for the message.
///
/// Generic over every operation's error type, so it is instantiated once per SDK call: it only
/// takes the error apart and hands plain values to the non-generic helpers below, which do the
/// formatting once for all (each instance used to carry its own copy, in every Lambda binary).
pub fn port_error<E>(what: &str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(se) => service_error(
            what,
            se.raw().status().as_u16(),
            se.err().code().unwrap_or(""),
            se.err().message().unwrap_or(""),
        ),
        SdkError::TimeoutError(_) => unanswered(what, "timed out", &err),
        SdkError::DispatchFailure(df) => {
            let kind = if df.is_io() {
                "cannot reach the endpoint"
            } else if df.is_timeout() {
                "timed out reaching the endpoint"
            } else if df.is_user() {
                "the request could not be built"
            } else {
                "the request was not sent"
            };
            unanswered(what, kind, &err)
        }
        SdkError::ResponseError(_) => PortError::Transient(with_context(what, &err)),
        _ => PortError::Other(with_context(what, &err)),
    }
}

/// An answer from the service: classified by its error code, else its HTTP status.
#[inline(never)]
fn service_error(what: &str, status: u16, code: &str, message: &str) -> PortError {
    let text = if code.is_empty() {
        format!("{what}: HTTP {status} {message}")
    } else {
        format!("{what}: {code}: {message}")
    };
    classify(code, status, text)
}

/// `what: <the SDK's error with its whole source chain>`.
#[inline(never)]
fn with_context(what: &str, err: &(dyn std::error::Error + 'static)) -> String {
    format!("{what}: {}", DisplayErrorContext(err))
}

/// The request never got an answer. The SDK's full context is a page of nested Debug output
/// (connector, IMDS, credential chain), so the message keeps only what kind of failure it was and
/// the innermost cause; the whole chain is logged at debug level (RUST_LOG=debug).
#[inline(never)]
fn unanswered(what: &str, kind: &str, err: &(dyn std::error::Error + 'static)) -> PortError {
    tracing::debug!(error = %DisplayErrorContext(err), "{what}: no answer");
    let mut chain: Vec<String> = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = next {
        chain.push(e.to_string());
        next = e.source();
    }
    let cause = chain.last().cloned().unwrap_or_default();
    let text = if chain.iter().any(|m| m.contains("loading credentials")) {
        format!("no AWS credentials could be loaded ({cause})")
    } else {
        format!("{kind} ({cause})")
    };
    PortError::Transient(format!("{what}: {text}"))
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
        // The runtime's: a model that failed or timed out answering may answer the next time.
        "ModelErrorException" | "ModelTimeoutException" => PortError::Transient(text),
        // A deployment or throughput still warming up: wait and call again, like a throttle.
        "ModelNotReadyException" => PortError::Throttled(text),
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
        // The runtime's: a model error is retried later, a warming deployment waited for.
        assert!(matches!(
            classify("ModelErrorException", 424, "x".into()),
            PortError::Transient(_)
        ));
        assert!(matches!(
            classify("ModelNotReadyException", 429, "x".into()),
            PortError::Throttled(_)
        ));
        assert!(matches!(
            classify("Weird", 418, "x".into()),
            PortError::Other(_)
        ));
    }
}
