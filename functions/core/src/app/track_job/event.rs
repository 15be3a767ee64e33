//! Bedrock's `Model Customization Job State Change` event, as EventBridge delivers it to a rule's
//! target (user guide, "How EventBridge for Amazon Bedrock works"; samples in `events/`).
//!
//! Only the fields Distillery acts on are read; everything else in the event is ignored, so a
//! field Bedrock adds later breaks nothing. The status stays text until it is matched, so a status
//! this code does not know is reported and skipped rather than failing the delivery forever.

use serde::Deserialize;

use crate::domain::errors::StepError;
use crate::ports::JobStatus;

/// EventBridge's `source` for Bedrock's events.
pub const SOURCE: &str = "aws.bedrock";
/// EventBridge's `detail-type` for a model customization job's status change.
pub const DETAIL_TYPE: &str = "Model Customization Job State Change";

/// One job state-change event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JobStateChange {
    /// EventBridge's event id (logged, so a delivery can be traced).
    #[serde(default)]
    pub id: String,
    pub source: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    /// When Bedrock emitted the event (RFC 3339), as EventBridge reports it.
    #[serde(default)]
    pub time: Option<String>,
    pub detail: JobStateChangeDetail,
}

/// The event's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStateChangeDetail {
    pub job_name: String,
    pub job_arn: String,
    /// Bedrock's status, spelled as in GetModelCustomizationJob (`InProgress`, `Completed`,
    /// `Failed`, `Stopping`, `Stopped`). Note the field is `jobStatus`, not `status`.
    pub job_status: String,
    #[serde(default)]
    pub output_model_name: Option<String>,
    #[serde(default)]
    pub output_model_arn: Option<String>,
    #[serde(default)]
    pub failure_message: Option<String>,
}

impl JobStateChange {
    /// Parses an event payload; anything that is not a Bedrock job state-change event is an
    /// `InvalidInput` error that names the field at fault.
    pub fn from_json(payload: &serde_json::Value) -> Result<Self, StepError> {
        let event: JobStateChange = serde_json::from_value(payload.clone()).map_err(|e| {
            StepError::invalid_input(format!(
                "not a Bedrock job state-change event: {e} (expected {{\"source\": \"{SOURCE}\", \
                 \"detail-type\": \"{DETAIL_TYPE}\", \"detail\": {{\"jobName\", \"jobArn\", \
                 \"jobStatus\", ...}}}})"
            ))
        })?;
        if event.source != SOURCE {
            return Err(StepError::invalid_input(format!(
                "event {}: field 'source' is '{}', expected '{SOURCE}'",
                event.id, event.source
            )));
        }
        if event.detail_type != DETAIL_TYPE {
            return Err(StepError::invalid_input(format!(
                "event {}: field 'detail-type' is '{}', expected '{DETAIL_TYPE}'",
                event.id, event.detail_type
            )));
        }
        Ok(event)
    }

    /// The job status, or `None` for a status this code does not know.
    pub fn status(&self) -> Option<JobStatus> {
        match self.detail.job_status.as_str() {
            "InProgress" => Some(JobStatus::InProgress),
            "Completed" => Some(JobStatus::Completed),
            "Failed" => Some(JobStatus::Failed),
            "Stopping" => Some(JobStatus::Stopping),
            "Stopped" => Some(JobStatus::Stopped),
            _ => None,
        }
    }

    /// Whether a payload looks like an EventBridge event (has `detail-type`): how the status
    /// poller's binary tells an event from a step input.
    pub fn is_event_payload(payload: &serde_json::Value) -> bool {
        payload.get("detail-type").is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(status: &str) -> serde_json::Value {
        json!({
            "version": "0",
            "id": "2f3b4c5d-0000-4000-8000-000000000001",
            "detail-type": "Model Customization Job State Change",
            "source": "aws.bedrock",
            "account": "123456789012",
            "time": "2026-11-29T12:34:56Z",
            "region": "us-east-1",
            "resources": ["arn:aws:bedrock:us-east-1:123456789012:model-customization-job/abc"],
            "detail": {
                "version": "0.0",
                "jobName": "distill-support-chats-0123456789abcdef0123",
                "jobArn": "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/abc",
                "outputModelName": "support-chats-distilled-0123456789abcdef0123",
                "outputModelArn": "arn:aws:bedrock:us-east-1:123456789012:custom-model/x",
                "roleArn": "arn:aws:iam::123456789012:role/r",
                "jobStatus": status,
                "failureMessage": "boom",
                "creationTime": "2026-11-29T10:00:00Z",
                "lastModifiedTime": "2026-11-29T12:34:56Z",
                "endTime": "2026-11-29T12:34:56Z",
                "baseModelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0:300k",
                "hyperParameters": {},
                "trainingDataConfig": {"s3Uri": "s3://b/runs/x/dataset.jsonl"},
                "outputDataConfig": {"s3Uri": "s3://b/output/"}
            }
        })
    }

    #[test]
    fn reads_the_documented_fields_and_every_status() {
        for (text, status) in [
            ("InProgress", JobStatus::InProgress),
            ("Completed", JobStatus::Completed),
            ("Failed", JobStatus::Failed),
            ("Stopping", JobStatus::Stopping),
            ("Stopped", JobStatus::Stopped),
        ] {
            let e = JobStateChange::from_json(&sample(text)).unwrap();
            assert_eq!(e.status(), Some(status));
            assert_eq!(
                e.detail.job_name,
                "distill-support-chats-0123456789abcdef0123"
            );
            assert_eq!(e.detail.failure_message.as_deref(), Some("boom"));
            assert_eq!(
                e.detail.output_model_arn.as_deref(),
                Some("arn:aws:bedrock:us-east-1:123456789012:custom-model/x")
            );
        }
        let odd = JobStateChange::from_json(&sample("Paused")).unwrap();
        assert_eq!(odd.status(), None);
    }

    #[test]
    fn other_events_are_refused_with_the_field_at_fault() {
        let mut s3 = sample("Completed");
        s3["source"] = json!("aws.s3");
        let e = JobStateChange::from_json(&s3).unwrap_err();
        assert!(
            e.message.contains("field 'source' is 'aws.s3'"),
            "{}",
            e.message
        );

        let mut batch = sample("Completed");
        batch["detail-type"] = json!("Batch Inference Job State Change");
        let e = JobStateChange::from_json(&batch).unwrap_err();
        assert!(e.message.contains("'detail-type'"), "{}", e.message);

        let mut no_status = sample("Completed");
        no_status["detail"]
            .as_object_mut()
            .unwrap()
            .remove("jobStatus");
        let e = JobStateChange::from_json(&no_status).unwrap_err();
        assert!(e.message.contains("jobStatus"), "{}", e.message);
        assert!(JobStateChange::is_event_payload(&sample("Completed")));
        assert!(!JobStateChange::is_event_payload(
            &json!({"runId": "run-1"})
        ));
    }
}
