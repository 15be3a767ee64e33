//! The validator's three inputs: S3's Object Created event (through EventBridge), a `distillery submit`
//! payload, and a retraining schedule's payload.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::errors::StepError;
use crate::domain::run::RunId;
use crate::domain::settings::SettingsOverrides;

/// S3's "Object Created" event as EventBridge delivers it (only the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub struct S3ObjectCreatedDetail {
    pub bucket: S3BucketRef,
    pub object: S3ObjectRef,
}

#[derive(Debug, Clone, Deserialize)]
pub struct S3BucketRef {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct S3ObjectRef {
    /// The key exactly as stored: S3's EventBridge events carry the raw key (the S3 user guide's
    /// "EventBridge event message structure" shows and describes no encoding, moto sends `key.name`
    /// as is), unlike the older S3 event notifications (`Records[].s3.object.key`), whose key is
    /// form-URL-encoded ("red flower.jpg" arrives as "red+flower.jpg"). So it is never decoded here:
    /// decoding would turn a literal `+` into a space. `events/s3-object-created-special-key.json`.
    pub key: String,
    #[serde(default)]
    pub size: Option<u64>,
    /// Real S3 spells it `etag`.
    #[serde(default)]
    pub etag: Option<String>,
    /// moto 5.2.5 spells it `eTag`.
    #[serde(default, rename = "eTag")]
    pub e_tag: Option<String>,
    #[serde(default, rename = "version-id")]
    pub version_id: Option<String>,
}

/// The EventBridge envelope. (Our own few fields rather than `aws_lambda_events`' type: `app/` imports
/// no AWS crate; the fixtures in `events/` are also checked against `aws_lambda_events` in tests.)
#[derive(Debug, Clone, Deserialize)]
pub struct S3ObjectCreatedEvent {
    #[serde(rename = "detail-type", default)]
    pub detail_type: String,
    pub source: String,
    pub detail: S3ObjectCreatedDetail,
}

/// `distillery submit`'s payload.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitPayload {
    pub bucket: String,
    pub key: String,
    #[serde(default)]
    pub overrides: SettingsOverrides,
    /// `distillery runs retry`: the run this submission is a new attempt of.
    #[serde(default)]
    pub retry_of: Option<RunId>,
}

/// EventBridge Scheduler's payload for a retraining from invocation logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulePayload {
    pub schedule_name: String,
    pub scheduled_time: String,
    /// `curated` | `native`: this schedule's mode, overriding the stack's `LOG_RUN_MODE` (so one
    /// stack can run a curated weekly retraining and a native one side by side).
    #[serde(default)]
    pub log_run_mode: Option<String>,
}

/// The state machine hands the validator `{"input": <execution input>, "ownerExecution":
/// "$$.Execution.Id"}`, so a run records the execution that owns it. A bare event (a direct invoke,
/// an older definition) has no owner: any existing run for it is then a duplicate.
pub fn split_owner(event: Value) -> (Option<String>, Value) {
    match event {
        Value::Object(mut map)
            if map.contains_key("ownerExecution")
                && map.contains_key("input")
                && !map.contains_key("source") =>
        {
            let owner = map
                .remove("ownerExecution")
                .and_then(|v| v.as_str().map(str::to_string))
                .filter(|s| !s.is_empty());
            let input = map.remove("input").unwrap_or(Value::Null);
            (owner, input)
        }
        other => (None, other),
    }
}

/// The three inputs the validator understands.
#[derive(Debug, Clone)]
pub enum ValidateInput {
    ObjectCreated(Box<S3ObjectCreatedEvent>),
    Submit(SubmitPayload),
    Schedule(SchedulePayload),
}

impl ValidateInput {
    /// Tells the inputs apart by `source`, and names the field that is wrong when one is malformed.
    pub fn parse(event: Value) -> Result<Self, StepError> {
        let source = event
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let bad = |what: &str, e: serde_json::Error| {
            StepError::invalid_input(format!("not a valid {what} event: {e}"))
        };
        match source.as_str() {
            "aws.s3" => serde_json::from_value(event)
                .map(|e| ValidateInput::ObjectCreated(Box::new(e)))
                .map_err(|e| bad("S3 Object Created", e)),
            "distillery.cli" => serde_json::from_value(event)
                .map(ValidateInput::Submit)
                .map_err(|e| bad("distillery.cli submit", e)),
            "distillery.schedule" => serde_json::from_value(event)
                .map(ValidateInput::Schedule)
                .map_err(|e| bad("distillery.schedule", e)),
            "" => Err(StepError::invalid_input(
                "event has no 'source' (expected aws.s3, distillery.cli or distillery.schedule)",
            )),
            other => Err(StepError::invalid_input(format!(
                "unknown event source '{other}' (expected aws.s3, distillery.cli or distillery.schedule)"
            ))),
        }
    }
}
