//! Bedrock's restJson1 wire conventions (control plane and runtime): error encoding, timestamps,
//! operation names.
//!
//! The Rust SDK picks the typed error from the `x-amzn-ErrorType` header (falling back to `code` or
//! `__type` in the body) and reads `message` from the JSON body, so every error carries both.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The Bedrock control-plane operations the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operation {
    CreateModelCustomizationJob,
    GetModelCustomizationJob,
    ListModelCustomizationJobs,
    StopModelCustomizationJob,
    CreateProvisionedModelThroughput,
    GetProvisionedModelThroughput,
    DeleteProvisionedModelThroughput,
    ListProvisionedModelThroughputs,
    ListTagsForResource,
    TagResource,
    UntagResource,
    CreateCustomModelDeployment,
    GetCustomModelDeployment,
    ListCustomModelDeployments,
    DeleteCustomModelDeployment,
    /// The Bedrock runtime's Converse (`POST /model/{modelId}/converse`), served on the same port.
    Converse,
}

impl Operation {
    pub const ALL: [Operation; 16] = [
        Operation::CreateModelCustomizationJob,
        Operation::GetModelCustomizationJob,
        Operation::ListModelCustomizationJobs,
        Operation::StopModelCustomizationJob,
        Operation::CreateProvisionedModelThroughput,
        Operation::GetProvisionedModelThroughput,
        Operation::DeleteProvisionedModelThroughput,
        Operation::ListProvisionedModelThroughputs,
        Operation::ListTagsForResource,
        Operation::TagResource,
        Operation::UntagResource,
        Operation::CreateCustomModelDeployment,
        Operation::GetCustomModelDeployment,
        Operation::ListCustomModelDeployments,
        Operation::DeleteCustomModelDeployment,
        Operation::Converse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateModelCustomizationJob => "CreateModelCustomizationJob",
            Operation::GetModelCustomizationJob => "GetModelCustomizationJob",
            Operation::ListModelCustomizationJobs => "ListModelCustomizationJobs",
            Operation::StopModelCustomizationJob => "StopModelCustomizationJob",
            Operation::CreateProvisionedModelThroughput => "CreateProvisionedModelThroughput",
            Operation::GetProvisionedModelThroughput => "GetProvisionedModelThroughput",
            Operation::DeleteProvisionedModelThroughput => "DeleteProvisionedModelThroughput",
            Operation::ListProvisionedModelThroughputs => "ListProvisionedModelThroughputs",
            Operation::ListTagsForResource => "ListTagsForResource",
            Operation::TagResource => "TagResource",
            Operation::UntagResource => "UntagResource",
            Operation::CreateCustomModelDeployment => "CreateCustomModelDeployment",
            Operation::GetCustomModelDeployment => "GetCustomModelDeployment",
            Operation::ListCustomModelDeployments => "ListCustomModelDeployments",
            Operation::DeleteCustomModelDeployment => "DeleteCustomModelDeployment",
            Operation::Converse => "Converse",
        }
    }

    /// Whether this is a Bedrock runtime operation (the `bedrock-runtime` endpoint) rather than a
    /// control-plane one.
    pub fn is_runtime(self) -> bool {
        matches!(self, Operation::Converse)
    }

    /// Whether the API model lists ServiceQuotaExceededException for this operation; injecting it
    /// elsewhere would produce an error the SDK can only report as "unhandled".
    pub fn declares_quota_error(self) -> bool {
        matches!(
            self,
            Operation::CreateModelCustomizationJob
                | Operation::CreateProvisionedModelThroughput
                | Operation::CreateCustomModelDeployment
        )
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Bedrock's modelled error shapes, with the HTTP status the API reference gives each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Validation,
    ResourceNotFound,
    Conflict,
    Throttling,
    ServiceQuotaExceeded,
    TooManyTags,
    AccessDenied,
    InternalServer,
    /// Runtime only: the model failed while answering (424, with `originalStatusCode` and
    /// `resourceName`).
    ModelError,
    /// Runtime only: the model is not ready to serve (a deployment or Provisioned Throughput still
    /// Creating). 429, like throttling.
    ModelNotReady,
    /// Not a modelled shape: the body could not be read as JSON of the right shape.
    Serialization,
    /// Not a modelled shape: no route matches (the simulator does not serve that operation).
    UnknownOperation,
}

impl ErrorKind {
    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::Validation => "ValidationException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::Conflict => "ConflictException",
            ErrorKind::Throttling => "ThrottlingException",
            ErrorKind::ServiceQuotaExceeded => "ServiceQuotaExceededException",
            ErrorKind::TooManyTags => "TooManyTagsException",
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::InternalServer => "InternalServerException",
            ErrorKind::ModelError => "ModelErrorException",
            ErrorKind::ModelNotReady => "ModelNotReadyException",
            ErrorKind::Serialization => "SerializationException",
            ErrorKind::UnknownOperation => "UnknownOperationException",
        }
    }

    /// Status codes from the Bedrock API reference (ConflictException and the quota/tag errors are 400
    /// in Bedrock, not 409/402).
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::Validation
            | ErrorKind::Conflict
            | ErrorKind::ServiceQuotaExceeded
            | ErrorKind::TooManyTags
            | ErrorKind::Serialization => StatusCode::BAD_REQUEST,
            ErrorKind::ResourceNotFound | ErrorKind::UnknownOperation => StatusCode::NOT_FOUND,
            ErrorKind::Throttling | ErrorKind::ModelNotReady => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::ModelError => StatusCode::FAILED_DEPENDENCY,
            ErrorKind::AccessDenied => StatusCode::FORBIDDEN,
            ErrorKind::InternalServer => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error response as Bedrock sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// Members the error shape has besides `message` (ModelErrorException's `originalStatusCode`
    /// and `resourceName`).
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            fields: serde_json::Map::new(),
        }
    }
    /// Adds a member to the error body.
    pub fn with_field(mut self, key: &str, value: serde_json::Value) -> Self {
        self.fields.insert(key.into(), value);
        self
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceNotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.fields;
        body.insert("message".into(), serde_json::Value::String(self.message));
        let body = serde_json::Value::Object(body).to_string();
        let mut response = (
            self.kind.status(),
            [(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        response.headers_mut().insert(
            "x-amzn-ErrorType",
            HeaderValue::from_static(self.kind.type_name()),
        );
        if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
            response.headers_mut().insert("x-amzn-RequestId", id);
        }
        response
    }
}

/// Bedrock's JSON timestamps are RFC 3339 date-times; the SDK rejects other shapes.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A random 12-character lowercase alphanumeric id, the suffix shape of Bedrock ARNs.
pub fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// The region the caller signed for (from the SigV4 credential scope), so ARNs and the supported-pair
/// region check follow the client's region like the real endpoint does.
pub fn signed_region(authorization: Option<&str>) -> Option<String> {
    let scope = authorization?.split("Credential=").nth(1)?;
    let scope = scope.split([',', ' ']).next()?;
    let region = scope.split('/').nth(2)?;
    (!region.is_empty()).then(|| region.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_comes_from_the_credential_scope() {
        let header = "AWS4-HMAC-SHA256 Credential=testing/20261127/us-west-2/bedrock/aws4_request, SignedHeaders=host, Signature=abc";
        assert_eq!(signed_region(Some(header)).as_deref(), Some("us-west-2"));
        assert_eq!(signed_region(Some("Bearer x")), None);
        assert_eq!(signed_region(None), None);
    }

    #[test]
    fn timestamps_are_rfc3339_with_z() {
        let t = DateTime::parse_from_rfc3339("2026-11-27T18:52:32Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp(t), "2026-11-27T18:52:32.000Z");
    }
}
