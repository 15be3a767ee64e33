//! The simulator's state and the semantics of each operation, independent of HTTP.

mod converse_calls;
mod deployment_calls;
mod job_calls;
mod list_query;
mod tag_calls;
mod throughput_calls;

use std::collections::HashMap;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use distillery_core::domain::catalog::ModelCatalog;
use serde_json::{json, Map, Value};

use crate::calls::CallRecord;
use crate::deployment::Deployment;
use crate::events::{self, EventRecord, Outcome, Pending};
use crate::faults::FaultBook;
use crate::jobs::{Job, Timing};
use crate::throughput::Throughput;
use crate::wire::{timestamp, ApiError, ErrorKind, Operation};
use list_query::ListQuery;

/// Everything a simulator instance is configured with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Region used for ARNs when a request is not SigV4-signed (signed requests use their own region).
    pub region: String,
    pub account_id: String,
    pub timing: Timing,
    /// Supported teacher → student pairs (the launcher's data file, `ModelCatalog::load()`).
    pub catalog: ModelCatalog,
    /// A real account quota: at most this many jobs InProgress/Stopping at once (None = unlimited).
    pub max_in_progress_jobs: Option<usize>,
    /// When true (default), CreateProvisionedModelThroughput needs a custom model that a Completed
    /// job in this simulator produced (or a foundation model id); otherwise ResourceNotFoundException.
    pub strict_model_ids: bool,
    /// Port to bind on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// How long a custom model deployment stays Creating, in milliseconds; None = as long as a
    /// Provisioned Throughput (`timing.pt_ms`). Kept out of [`Timing`] so its literals stay valid.
    pub deployment_ms: Option<u64>,
    /// EventBridge endpoint (e.g. moto's URL) that receives each job state-change event through
    /// PutEvents on the default bus. None: events are built and logged (`/_sim/events`), not sent.
    pub events_url: Option<String>,
    /// S3 endpoint (e.g. moto's URL, path-style) the invocation logs of a native invocation-log job
    /// are read from. None: such jobs are not checked (they train as any job does).
    pub s3_url: Option<String>,
    /// The share (0..=1) of prompts on which a student gives its teacher's answer (Converse);
    /// the rest get a weaker answer, which the simulated judge prefers less. Default 0.9.
    pub student_quality: f64,
}

/// [`SimConfig::student_quality`]'s default.
pub const DEFAULT_STUDENT_QUALITY: f64 = 0.9;

/// Checks a student quality knob value (0..=1).
pub fn check_student_quality(q: f64) -> Result<f64, String> {
    if q.is_finite() && (0.0..=1.0).contains(&q) {
        Ok(q)
    } else {
        Err(format!(
            "studentQuality must be a number from 0 to 1, got {q}"
        ))
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            timing: Timing::default(),
            catalog: ModelCatalog::load().unwrap_or_else(|_| ModelCatalog::builtin()),
            max_in_progress_jobs: None,
            strict_model_ids: true,
            port: 0,
            deployment_ms: None,
            events_url: None,
            s3_url: None,
            student_quality: DEFAULT_STUDENT_QUALITY,
        }
    }
}

/// One API call as the HTTP layer hands it over.
pub struct ApiRequest {
    pub op: Operation,
    pub region: String,
    /// The decoded `{jobIdentifier}` / `{provisionedModelId}` path label.
    pub id: Option<String>,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// CreateModelCustomizationJob on invocation logs: the HTTP layer read the logs first (it may
    /// await; the simulator's state may not): `Some(message)` fails the job in its validation phase.
    pub data_failure: Option<String>,
}

pub struct ApiSuccess {
    pub status: StatusCode,
    /// None = empty body.
    pub body: Option<Value>,
    pub resource_arn: Option<String>,
}

impl ApiSuccess {
    fn ok(body: Value) -> Self {
        ApiSuccess {
            status: StatusCode::OK,
            body: Some(body),
            resource_arn: None,
        }
    }
}

pub struct Sim {
    pub config: SimConfig,
    jobs: Vec<Job>,
    throughputs: Vec<Throughput>,
    deployments: Vec<Deployment>,
    /// A resource's whole tag list once TagResource or UntagResource changed it (by ARN); until then
    /// its tags are the ones its create request gave.
    tag_overrides: HashMap<String, Vec<(String, String)>>,
    pub faults: FaultBook,
    pub calls: Vec<CallRecord>,
    seq: u64,
    /// Job state-change events sent, dropped or failed, in the order they were acted on.
    pub events: Vec<EventRecord>,
    /// Events detected but not yet due (held back by a `delayEvents` fault).
    outbox: Vec<Pending>,
    event_seq: u64,
    /// Who answered the Converse call being handled ("teacher", "student" or "judge"), for its
    /// call record.
    runtime_note: Option<&'static str>,
}

/// The model id inside a Bedrock model ARN (`...:foundation-model/<id>`), or the id itself.
fn model_id_of(identifier: &str) -> &str {
    if identifier.starts_with("arn:") {
        identifier
            .split_once('/')
            .map(|(_, id)| id)
            .unwrap_or(identifier)
    } else {
        identifier
    }
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ApiError::new(
            ErrorKind::Serialization,
            "Request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            ErrorKind::Serialization,
            format!("Request body is not valid JSON: {e}"),
        )),
    }
}

/// The request fields worth keeping in the call log.
fn key_fields(req: &ApiRequest) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("region".into(), json!(req.region));
    if let Some(id) = &req.id {
        let key = match req.op {
            Operation::GetProvisionedModelThroughput
            | Operation::DeleteProvisionedModelThroughput => "provisionedModelId",
            Operation::GetCustomModelDeployment | Operation::DeleteCustomModelDeployment => {
                "customModelDeploymentIdentifier"
            }
            Operation::Converse => "modelId",
            _ => "jobIdentifier",
        };
        out.insert(key.into(), json!(id));
    }
    for (k, v) in &req.query {
        out.insert(k.clone(), json!(v));
    }
    if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body) {
        if req.op == Operation::Converse {
            // The prompt answered (cut, the log is for assertions, not replay) and maxTokens.
            if let Some(prompt) = converse_calls::last_user_text(&body) {
                let cut: String = prompt.chars().take(2000).collect();
                out.insert("prompt".into(), json!(cut));
            }
            if let Some(max) = body.get("inferenceConfig").and_then(|c| c.get("maxTokens")) {
                out.insert("maxTokens".into(), max.clone());
            }
            // What makes an application's traffic selectable by requestMetadataFilters.
            if let Some(m) = body.get("requestMetadata") {
                out.insert("requestMetadata".into(), m.clone());
            }
            return out;
        }
        for key in [
            "jobName",
            "customModelName",
            "baseModelIdentifier",
            "customizationType",
            "clientRequestToken",
            "provisionedModelName",
            "modelId",
            "modelUnits",
            "commitmentDuration",
            "resourceARN",
            "modelDeploymentName",
            "modelArn",
            "customModelKmsKeyId",
        ] {
            if let Some(v) = body.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
        let teacher =
            "/customizationConfig/distillationConfig/teacherModelConfig/teacherModelIdentifier";
        if let Some(t) = Value::Object(body.clone()).pointer(teacher) {
            out.insert("teacherModelIdentifier".into(), t.clone());
        }
        if let Some(uri) = body.get("trainingDataConfig").and_then(|t| t.get("s3Uri")) {
            out.insert("trainingDataS3Uri".into(), uri.clone());
        }
        let logs = "/trainingDataConfig/invocationLogsConfig/invocationLogSource/s3Uri";
        if let Some(uri) = Value::Object(body.clone()).pointer(logs) {
            out.insert("invocationLogsS3Uri".into(), uri.clone());
        }
    }
    out
}

impl Sim {
    pub fn new(config: SimConfig) -> Self {
        Sim {
            config,
            jobs: Vec::new(),
            throughputs: Vec::new(),
            deployments: Vec::new(),
            tag_overrides: HashMap::new(),
            faults: FaultBook::default(),
            calls: Vec::new(),
            seq: 0,
            events: Vec::new(),
            outbox: Vec::new(),
            event_seq: 0,
            runtime_note: None,
        }
    }

    /// Forgets all jobs, Provisioned Throughputs, deployments, faults and calls.
    pub fn reset(&mut self) {
        self.jobs.clear();
        self.throughputs.clear();
        self.deployments.clear();
        self.tag_overrides.clear();
        self.faults.clear();
        self.calls.clear();
        self.seq = 0;
        self.events.clear();
        self.outbox.clear();
        self.event_seq = 0;
    }

    /// Finds every job status change not yet announced, applies the event faults to it, and returns
    /// the events due for publishing at `now` (oldest first). Dropped events are logged here.
    pub(crate) fn take_due_events(&mut self, now: DateTime<Utc>) -> Vec<Pending> {
        let account = self.config.account_id.clone();
        let default_region = self.config.region.clone();
        let mut found = Vec::new();
        for job in &mut self.jobs {
            let changes = job.status_changes(job.elapsed_ms(now));
            for &(status, at_ms) in changes.iter().skip(job.announced) {
                found.push(Pending {
                    due: now,
                    copies: 1,
                    delayed_ms: 0,
                    job_name: job.name.clone(),
                    job_arn: job.arn.clone(),
                    status,
                    status_time: job.created_at + chrono::Duration::milliseconds(at_ms as i64),
                    account: account.clone(),
                    region: events::region_of(&job.arn)
                        .unwrap_or(&default_region)
                        .to_string(),
                    detail: events::detail(job, status, at_ms),
                });
            }
            job.announced = job.announced.max(changes.len());
        }
        // Changes of different jobs in the order they happened.
        found.sort_by_key(|p| p.status_time);
        for mut event in found {
            let effect = self
                .faults
                .take_event_faults(&event.job_name, event.status.as_str());
            if effect.drop {
                self.log_event(&event, 1, Outcome::Dropped, None, None);
                continue;
            }
            if effect.duplicate {
                event.copies = 2;
            }
            if let Some(ms) = effect.delay_ms {
                event.delayed_ms = ms;
                event.due = now + chrono::Duration::milliseconds(ms as i64);
            }
            self.outbox.push(event);
        }
        let (mut due, later): (Vec<_>, Vec<_>) = self.outbox.drain(..).partition(|p| p.due <= now);
        self.outbox = later;
        due.sort_by_key(|p| p.due);
        due
    }

    /// Appends one event to the event log.
    pub(crate) fn log_event(
        &mut self,
        event: &Pending,
        copy: u32,
        outcome: Outcome,
        event_id: Option<String>,
        error: Option<String>,
    ) {
        self.event_seq += 1;
        self.events
            .push(event.record(self.event_seq, copy, outcome, event_id, error));
    }

    /// Answers one API call: injected fault, or the operation itself; then logs it.
    pub fn handle(&mut self, req: &ApiRequest) -> Result<ApiSuccess, ApiError> {
        let now = Utc::now();
        self.runtime_note = None;
        let result = match self.faults.take_call_fault(req.op) {
            // ModelErrorException names the model that failed.
            Some(err) if err.kind == ErrorKind::ModelError => {
                Err(err.with_field("resourceName", json!(req.id.clone().unwrap_or_default())))
            }
            Some(err) => Err(err),
            None => self.dispatch(req, now),
        };
        self.seq += 1;
        let (status, error_type, error_message, resource_arn) = match &result {
            Ok(s) => (s.status.as_u16(), None, None, s.resource_arn.clone()),
            Err(e) => (
                e.kind.status().as_u16(),
                Some(e.kind.type_name().to_string()),
                Some(e.message.clone()),
                None,
            ),
        };
        let mut request = key_fields(req);
        if let Some(who) = self.runtime_note.take() {
            request.insert("answeredAs".into(), json!(who));
        }
        self.calls.push(CallRecord {
            seq: self.seq,
            time: timestamp(now),
            operation: req.op.name().to_string(),
            request,
            status,
            error_type,
            error_message,
            resource_arn,
        });
        result
    }

    /// Logs a request to a route the simulator does not serve.
    pub fn log_unknown(&mut self, method: &str, path: &str, err: &ApiError) {
        self.seq += 1;
        let mut request = Map::new();
        request.insert("method".into(), json!(method));
        request.insert("path".into(), json!(path));
        self.calls.push(CallRecord {
            seq: self.seq,
            time: timestamp(Utc::now()),
            operation: "Unknown".into(),
            request,
            status: err.kind.status().as_u16(),
            error_type: Some(err.kind.type_name().into()),
            error_message: Some(err.message.clone()),
            resource_arn: None,
        });
    }

    fn dispatch(&mut self, req: &ApiRequest, now: DateTime<Utc>) -> Result<ApiSuccess, ApiError> {
        let id = req.id.as_deref().unwrap_or_default();
        match req.op {
            Operation::CreateModelCustomizationJob => {
                let body = parse_body(&req.body)?;
                self.create_job(&req.region, body, now, req.data_failure.clone())
            }
            Operation::GetModelCustomizationJob => {
                let job = self.find_job(id)?;
                Ok(ApiSuccess::ok(job.describe(now)))
            }
            Operation::ListModelCustomizationJobs => self.list_jobs(&req.query, now),
            Operation::StopModelCustomizationJob => self.stop_job(id, now),
            Operation::CreateProvisionedModelThroughput => {
                let body = parse_body(&req.body)?;
                self.create_throughput(&req.region, body, now)
            }
            Operation::GetProvisionedModelThroughput => {
                let pt = self.find_throughput(id)?;
                Ok(ApiSuccess::ok(pt.describe(now)))
            }
            Operation::DeleteProvisionedModelThroughput => self.delete_throughput(id, now),
            Operation::ListProvisionedModelThroughputs => self.list_throughputs(&req.query, now),
            Operation::ListTagsForResource => {
                let body = parse_body(&req.body)?;
                self.list_tags(body, now)
            }
            Operation::TagResource => {
                let body = parse_body(&req.body)?;
                self.tag_resource(body, now)
            }
            Operation::UntagResource => {
                let body = parse_body(&req.body)?;
                self.untag_resource(body, now)
            }
            Operation::CreateCustomModelDeployment => {
                let body = parse_body(&req.body)?;
                self.create_deployment(&req.region, body, now)
            }
            Operation::GetCustomModelDeployment => self.get_deployment(id, now),
            Operation::ListCustomModelDeployments => self.list_deployments(&req.query, now),
            Operation::DeleteCustomModelDeployment => self.delete_deployment(id),
            Operation::Converse => {
                let body = parse_body(&req.body)?;
                self.converse(&req.region, id, body, now)
            }
        }
    }
}
