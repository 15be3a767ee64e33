//! The call log: one record per Bedrock API call the simulator answered (control calls excluded).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::wire::Operation;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// 1, 2, 3… in the order calls were answered.
    pub seq: u64,
    /// RFC 3339 time the call was answered.
    pub time: String,
    /// The Bedrock operation name, e.g. "CreateModelCustomizationJob" ("Unknown" for unserved routes).
    pub operation: String,
    /// Key request fields: names, identifiers, model ids, token, query parameters, signed region.
    pub request: Map<String, Value>,
    /// HTTP status sent back.
    pub status: u16,
    /// The `x-amzn-ErrorType` sent back, for errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The job or Provisioned Throughput ARN the call created or addressed, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_arn: Option<String>,
}

impl CallRecord {
    pub fn is(&self, op: Operation) -> bool {
        self.operation == op.name()
    }

    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A request field as a string, e.g. `call.field("jobName")`.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.request.get(key).and_then(Value::as_str)
    }
}
