//! Bedrock's job state-change events: one "Model Customization Job State Change" event per job status
//! change, published to EventBridge's default bus the way Bedrock publishes them (issue 11).
//!
//! The shape follows the sample in the Bedrock user guide, "How EventBridge for Amazon Bedrock works"
//! (`events/bedrock-job-state-change-sample.json`): `detail` carries `version`, the job's identity and
//! configuration, and its status as `jobStatus` (not `status`). The page sends readers to
//! GetModelCustomizationJob for the meaning of each detail field, so the values are taken from the
//! simulator's own GetModelCustomizationJob answer at the moment of the change.
//!
//! Statuses are still a pure function of time (see `jobs.rs`); a background task
//! ([`run_publisher`]) notices each change within [`TICK_MS`] and publishes it. Real Bedrock delivers
//! "on a best-effort basis", so faults can drop, duplicate or delay events (`faults.rs`), and every
//! event, published or not, is kept in the event log (`GET /_sim/events`) with the time the job reached
//! the status and the time the event was published.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::jobs::{Job, JobStatus};
use crate::server::{lock, Shared};
use crate::wire::timestamp;

pub const SOURCE: &str = "aws.bedrock";
pub const DETAIL_TYPE: &str = "Model Customization Job State Change";

/// The `detail` members of the documented sample, in its order. An event carries each one the job
/// has at that moment (e.g. `outputModelArn` once Completed, `failureMessage` once Failed,
/// `hyperParameters` / `validationDataConfig` only when the job was created with them).
pub const DETAIL_FIELDS: [&str; 16] = [
    "version",
    "jobName",
    "jobArn",
    "outputModelName",
    "outputModelArn",
    "roleArn",
    "jobStatus",
    "failureMessage",
    "creationTime",
    "lastModifiedTime",
    "endTime",
    "baseModelArn",
    "hyperParameters",
    "trainingDataConfig",
    "validationDataConfig",
    "outputDataConfig",
];

/// The envelope members EventBridge delivers to a rule's target, in the documented sample's order.
pub const ENVELOPE_FIELDS: [&str; 9] = [
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
];

/// How often the publisher looks for status changes (also the worst-case event latency, plus the
/// PutEvents round trip).
pub const TICK_MS: u64 = 20;

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// PutEvents accepted it (`eventId` is EventBridge's id).
    Published,
    /// A `dropEvents` fault swallowed it: nothing was sent.
    Dropped,
    /// PutEvents failed (transport error, HTTP error, or a failed entry): see `error`.
    Failed,
    /// No `--events-url` is configured: the event was built and logged, not sent.
    Unsent,
}

/// One entry of the event log (`GET /_sim/events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    /// 1, 2, 3… in the order the simulator acted on the events.
    pub seq: u64,
    pub job_name: String,
    pub job_arn: String,
    pub job_status: String,
    /// When the job reached `jobStatus` (RFC 3339, milliseconds); also the event's `time`.
    pub status_time: String,
    /// When the simulator acted on the event: PutEvents answered, or the drop was decided.
    pub published_at: String,
    pub outcome: Outcome,
    /// 1; 2 for the second copy of an event a `duplicateEvents` fault sent twice.
    pub copy: u32,
    /// How long a `delayEvents` fault held the event back (0 = not held).
    pub delayed_ms: u64,
    /// EventBridge's `EventId` (published events only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The event as an EventBridge rule target receives it (`id` = `eventId` when published).
    pub event: Value,
}

/// An event waiting for its publish time.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub due: DateTime<Utc>,
    pub copies: u32,
    pub delayed_ms: u64,
    pub job_name: String,
    pub job_arn: String,
    pub status: JobStatus,
    pub status_time: DateTime<Utc>,
    pub account: String,
    pub region: String,
    pub detail: Value,
}

impl Pending {
    /// The event as delivered; `id` is EventBridge's (a local UUID stands in when it was not sent).
    pub fn envelope(&self, id: &str) -> Value {
        json!({
            "version": "0",
            "id": id,
            "detail-type": DETAIL_TYPE,
            "source": SOURCE,
            "account": self.account,
            // EventBridge's `time` has whole seconds (the sample's "2023-08-11T12:34:56Z").
            "time": self.status_time.to_rfc3339_opts(SecondsFormat::Secs, true),
            "region": self.region,
            "resources": [self.job_arn],
            "detail": self.detail,
        })
    }

    pub fn record(
        &self,
        seq: u64,
        copy: u32,
        outcome: Outcome,
        event_id: Option<String>,
        error: Option<String>,
    ) -> EventRecord {
        let id = event_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        EventRecord {
            seq,
            job_name: self.job_name.clone(),
            job_arn: self.job_arn.clone(),
            job_status: self.status.as_str().to_string(),
            status_time: timestamp(self.status_time),
            published_at: timestamp(Utc::now()),
            outcome,
            copy,
            delayed_ms: self.delayed_ms,
            event_id,
            error,
            event: self.envelope(&id),
        }
    }
}

/// The region inside a Bedrock ARN (`arn:aws:bedrock:<region>:…`).
pub(crate) fn region_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// The `detail` of the event for `job` reaching `status` `at_ms` after creation: the documented
/// members, valued as GetModelCustomizationJob reports them at that moment.
pub(crate) fn detail(job: &Job, status: JobStatus, at_ms: u64) -> Value {
    let described = job.describe(job.created_at + chrono::Duration::milliseconds(at_ms as i64));
    let mut out = Map::new();
    for key in DETAIL_FIELDS {
        let value = match key {
            "version" => Some(json!("0.0")),
            // The status this event announces (Get calls the member `status`).
            "jobStatus" => Some(json!(status.as_str())),
            _ => described.get(key).filter(|v| !v.is_null()).cloned(),
        };
        if let Some(v) = value {
            out.insert(key.to_string(), v);
        }
    }
    Value::Object(out)
}

/// Sends one event with EventBridge's PutEvents (awsJson1_1) to the default bus; returns its EventId.
/// Real EventBridge refuses `aws.*` sources from PutEvents; moto 5.2.5 accepts them, which is what
/// lets the simulator stand in for Bedrock here.
pub(crate) async fn put_event(
    client: &reqwest::Client,
    url: &str,
    event: &Pending,
) -> Result<String, String> {
    let body = json!({
        "Entries": [{
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": event.detail.to_string(),
            "Resources": [event.job_arn],
            // awsJson1_1 timestamps are epoch seconds.
            "Time": event.status_time.timestamp_millis() as f64 / 1000.0,
        }]
    });
    // moto reads the region (and so the bus) from the credential scope; it checks no signature.
    let scope = format!(
        "AWS4-HMAC-SHA256 Credential=testing/{}/{}/events/aws4_request, SignedHeaders=host;x-amz-target, Signature=0",
        Utc::now().format("%Y%m%d"),
        event.region
    );
    let response = client
        .post(url)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "AWSEvents.PutEvents")
        .header("authorization", scope)
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("PutEvents to {url}: {e}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("PutEvents to {url}: reading the answer: {e}"))?;
    if !status.is_success() {
        return Err(format!("PutEvents to {url}: HTTP {status}: {text}"));
    }
    let answer: Value = serde_json::from_str(&text)
        .map_err(|e| format!("PutEvents answer is not JSON ({e}): {text}"))?;
    let entry = &answer["Entries"][0];
    match entry["EventId"].as_str() {
        Some(id) if answer["FailedEntryCount"].as_u64().unwrap_or(0) == 0 => Ok(id.to_string()),
        _ => Err(format!(
            "PutEvents refused the entry: {} {}",
            entry["ErrorCode"].as_str().unwrap_or("?"),
            entry["ErrorMessage"].as_str().unwrap_or(&text)
        )),
    }
}

/// Publishes the events that are due, every [`TICK_MS`], for as long as the server runs. Events are
/// sent one at a time, in order, outside the state lock (a slow EventBridge never stalls the API).
pub(crate) async fn run_publisher(state: Shared) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| tracing::error!(error = %e, "no HTTP client: events will not be sent"))
        .ok();
    let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let (url, due) = {
            let mut sim = lock(&state);
            let due = sim.take_due_events(Utc::now());
            (sim.config.events_url.clone(), due)
        };
        for event in due {
            for copy in 1..=event.copies {
                let (outcome, id, error) = match (&url, &client) {
                    (Some(url), Some(client)) => match put_event(client, url, &event).await {
                        Ok(id) => (Outcome::Published, Some(id), None),
                        Err(e) => {
                            tracing::warn!(job = %event.job_name, status = event.status.as_str(), error = %e, "event not published");
                            (Outcome::Failed, None, Some(e))
                        }
                    },
                    _ => (Outcome::Unsent, None, None),
                };
                tracing::info!(
                    job = %event.job_name,
                    status = event.status.as_str(),
                    outcome = ?outcome,
                    event_id = id.as_deref().unwrap_or("-"),
                    "job state-change event"
                );
                lock(&state).log_event(&event, copy, outcome, id, error);
            }
        }
    }
}
