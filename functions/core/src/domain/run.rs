//! A run: one dataset's journey from upload to a served model, as recorded in the ledger.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::settings::{RunSettings, ServingMode};
use super::snapshot::DatasetSnapshot;

mod id;
pub use id::{RunId, RunIdentity};
mod priority;
pub use priority::{QueuePriority, PRIORITY_METADATA_KEY};
mod rules;
mod update;
pub use update::RunUpdate;

/// Where a run came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunSource {
    /// An S3 Object Created event for the upload prefix.
    S3Upload,
    /// An EventBridge Scheduler retraining from invocation logs.
    Schedule,
    /// `distillery submit`.
    Cli,
}

/// The dataset a run trains on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DatasetLocation {
    S3Object {
        bucket: String,
        key: String,
        etag: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version_id: Option<String>,
        #[serde(default)]
        size: u64,
    },
    InvocationLogs {
        /// `s3://bucket/prefix/` of the Bedrock invocation logs.
        s3_uri: String,
        /// The `requestMetadataFilters` union as JSON (`{"equals": {"k": "v"}}` etc.).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_metadata_filters: Option<serde_json::Value>,
        #[serde(default)]
        use_prompt_response: bool,
        /// How the run uses the logs. Records written before modes existed passed the logs to
        /// Bedrock, so they read as `native`.
        #[serde(default = "LogRunMode::recorded_before_modes")]
        mode: LogRunMode,
        /// The EventBridge Scheduler schedule that started the run: the window of its next run
        /// starts where this one's ended ([`crate::app::validate_dataset::window_start`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schedule_name: Option<String>,
        /// The invocation-log window the run covers, `[window_start, window_end)` (curated runs;
        /// `None` on records written before windows existed and on native runs, where Bedrock reads
        /// the whole prefix).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window_start: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window_end: Option<DateTime<Utc>>,
    },
}

/// How a scheduled run uses the invocation logs (`LOG_RUN_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogRunMode {
    /// Distillery reads the window's logs, converts the eligible records to a dataset, validates
    /// it like an upload and trains on that snapshot (the stack's default).
    Curated,
    /// The log prefix and `requestMetadataFilters` go to Bedrock as they are (Bedrock reads and
    /// filters the whole prefix itself; nothing is counted or validated beforehand).
    Native,
}

impl LogRunMode {
    pub const ACCEPTED: &'static str = "curated or native";

    pub fn as_str(self) -> &'static str {
        match self {
            LogRunMode::Curated => "curated",
            LogRunMode::Native => "native",
        }
    }

    pub fn parse(s: &str) -> Option<LogRunMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "curated" => Some(LogRunMode::Curated),
            "native" => Some(LogRunMode::Native),
            _ => None,
        }
    }

    /// What a ledger record without a mode means: it was written when every scheduled run passed
    /// the logs to Bedrock.
    pub fn recorded_before_modes() -> LogRunMode {
        LogRunMode::Native
    }
}

impl std::fmt::Display for LogRunMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The invocation-log window a curated run covers: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl LogWindow {
    /// "2026-11-23T05:00:00Z to 2026-11-30T05:00:00Z"
    pub fn describe(&self) -> String {
        let f = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        format!("{} to {}", f(self.start), f(self.end))
    }
}

impl DatasetLocation {
    /// `s3://bucket/key` for an object, the log prefix for invocation logs.
    pub fn s3_uri(&self) -> String {
        match self {
            DatasetLocation::S3Object { bucket, key, .. } => format!("s3://{bucket}/{key}"),
            DatasetLocation::InvocationLogs { s3_uri, .. } => s3_uri.clone(),
        }
    }

    /// A short human name for the dataset: the object's file stem, or `invocation-logs`.
    pub fn display_name(&self) -> String {
        match self {
            DatasetLocation::S3Object { key, .. } => {
                let file = key.rsplit('/').next().unwrap_or(key);
                file.strip_suffix(".jsonl").unwrap_or(file).to_string()
            }
            DatasetLocation::InvocationLogs { .. } => "invocation-logs".to_string(),
        }
    }

    /// The window an invocation-log run covers, when it recorded one.
    pub fn log_window(&self) -> Option<LogWindow> {
        match self {
            DatasetLocation::InvocationLogs {
                window_start: Some(start),
                window_end: Some(end),
                ..
            } => Some(LogWindow {
                start: *start,
                end: *end,
            }),
            _ => None,
        }
    }

    /// The schedule an invocation-log run was started by, when it recorded one.
    pub fn schedule_name(&self) -> Option<&str> {
        match self {
            DatasetLocation::InvocationLogs { schedule_name, .. } => schedule_name.as_deref(),
            _ => None,
        }
    }
}

/// The life of a run. See the state diagram in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Received,
    Validating,
    Rejected,
    Validated,
    Launching,
    Training,
    Completed,
    Failed,
    Stopped,
    Provisioning,
    Ready,
    ProvisioningFailed,
    /// The run's deployment or throughput was deleted (expired, or `distillery runs retire`):
    /// nothing serves the model and nothing is billed for serving any more.
    Retired,
    /// The student failed its quality gate (or the evaluation could not be finished): nothing
    /// was bought, the deployment made for the evaluation was deleted.
    GateFailed,
    /// A scheduled curated run found too few new eligible records in its window
    /// (`MIN_NEW_RECORDS`): nothing was launched, and the next run's window starts where this
    /// one's started.
    Skipped,
    /// Validated and waiting for a job slot: the stack's `MAX_CONCURRENT_JOBS` are taken, older
    /// runs wait first, or Bedrock refused the job for its quota. Nothing is billed while queued;
    /// the run's [`QueueEntry`] says since when and why.
    Queued,
    /// Queued longer than `MAX_QUEUE_HOURS`: nothing was launched.
    Expired,
    /// The model is trained, but Bedrock refused its Provisioned Throughput or deployment for
    /// its quota: the run waits and tries again (within `MAX_QUEUE_HOURS`) instead of failing.
    ServingQueued,
}

impl RunStatus {
    pub const ALL: [RunStatus; 18] = [
        RunStatus::Received,
        RunStatus::Validating,
        RunStatus::Rejected,
        RunStatus::Validated,
        RunStatus::Launching,
        RunStatus::Training,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Stopped,
        RunStatus::Provisioning,
        RunStatus::Ready,
        RunStatus::ProvisioningFailed,
        RunStatus::Retired,
        RunStatus::GateFailed,
        RunStatus::Skipped,
        RunStatus::Queued,
        RunStatus::Expired,
        RunStatus::ServingQueued,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Received => "received",
            RunStatus::Validating => "validating",
            RunStatus::Rejected => "rejected",
            RunStatus::Validated => "validated",
            RunStatus::Launching => "launching",
            RunStatus::Training => "training",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Stopped => "stopped",
            RunStatus::Provisioning => "provisioning",
            RunStatus::Ready => "ready",
            RunStatus::ProvisioningFailed => "provisioning_failed",
            RunStatus::Retired => "retired",
            RunStatus::GateFailed => "gate_failed",
            RunStatus::Skipped => "skipped",
            RunStatus::Queued => "queued",
            RunStatus::Expired => "expired",
            RunStatus::ServingQueued => "serving_queued",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        RunStatus::ALL.into_iter().find(|st| st.as_str() == norm)
    }

    /// No further transition is possible (Completed can still move to Provisioning, and Ready to
    /// Retired when its serving is deleted).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Rejected
                | RunStatus::Failed
                | RunStatus::Stopped
                | RunStatus::ProvisioningFailed
                | RunStatus::Retired
                | RunStatus::GateFailed
                | RunStatus::Skipped
                | RunStatus::Expired
        )
    }

    /// The allowed moves. Anything else is refused by the ledger, so a retried or late Lambda can
    /// never move a run backwards.
    pub fn can_move_to(self, next: RunStatus) -> bool {
        use RunStatus::*;
        let allowed: &[RunStatus] = match self {
            Received => &[Validating, Failed],
            // Skipped: a scheduled curated run with too few new records in its window.
            Validating => &[Rejected, Validated, Failed, Skipped],
            Rejected => &[],
            // Queued: no job slot free (or older runs waiting); from Launching: Bedrock refused
            // the job for its quota, so the run waits instead of failing.
            Validated => &[Launching, Failed, Queued],
            Launching => &[Training, Failed, Queued],
            // Failed: its snapshot changed while it waited; Stopped: `distillery runs stop`.
            Queued => &[Launching, Failed, Stopped, Expired],
            Training => &[Training, Completed, Failed, Stopped],
            // ProvisioningFailed straight from Completed: the provisioner failed before it moved
            // the run (a caught error), and the model is still trained.
            Completed => &[Provisioning, Ready, ProvisioningFailed, Failed],
            Failed => &[],
            Stopped => &[],
            // Retired from Provisioning: `runs retire` deleted a throughput or deployment that was
            // still being created.
            // GateFailed: the evaluation on the run's deployment failed the gate (or could not
            // finish), decided while the run is provisioning.
            // ServingQueued: Bedrock refused the throughput or deployment for its quota.
            Provisioning => &[
                Provisioning,
                Ready,
                ProvisioningFailed,
                Retired,
                GateFailed,
                ServingQueued,
            ],
            // Back to Provisioning to try again; ProvisioningFailed past MAX_QUEUE_HOURS.
            ServingQueued => &[Provisioning, ProvisioningFailed],
            // Ready serves until its deployment or throughput is deleted.
            Ready => &[Retired],
            ProvisioningFailed => &[],
            Retired => &[],
            GateFailed => &[],
            Skipped => &[],
            Expired => &[],
        };
        allowed.contains(&next)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bedrock's distillation sub-statuses (`statusDetails`), kept as Bedrock spells them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainingDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_processing: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<String>,
}

impl TrainingDetail {
    /// "validation=Completed, dataProcessing=InProgress, training=NotStarted"
    pub fn summary(&self) -> String {
        let f = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        format!(
            "validation={}, dataProcessing={}, training={}",
            f(&self.validation),
            f(&self.data_processing),
            f(&self.training)
        )
    }
}

/// What the validator found, kept on the run (the full report is in S3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationSummary {
    pub valid: bool,
    pub records: u64,
    pub invalid_records: u64,
    pub error_count: u64,
    pub warning_count: u64,
    /// The first few errors, "line N: [code] message", for messages and the CLI.
    #[serde(default)]
    pub first_errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_uri: Option<String>,
    /// What the run was estimated to cost before launch (valid datasets; its fields are
    /// snake_case, the shape `distillery validate` prints too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_estimate: Option<super::cost::CostEstimate>,
}

/// One status change, appended and never rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<RunStatus>,
    pub to: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A notification attempt (one per milestone per channel), so a delivery failure is on record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub at: DateTime<Utc>,
    pub milestone: String,
    /// "sns" or "slack".
    pub channel: String,
    pub delivered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub run_id: RunId,
    pub source: RunSource,
    pub dataset: DatasetLocation,
    pub settings: RunSettings,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_detail: Option<TrainingDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_model_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_model_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_model_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_model_arn: Option<String>,
    /// The on-demand custom model deployment's name (`serving: on-demand`), recorded before
    /// Bedrock is asked to create it, so a retry finds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_name: Option<String>,
    /// The deployment's ARN: the `modelId` for Converse/InvokeModel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_arn: Option<String>,
    /// When Distillery deletes the run's no-commitment Provisioned Throughput (`PT_TTL_HOURS` after
    /// it went into service; `distillery runs extend` pushes it). `None` for committed throughput,
    /// which cannot be deleted before its term ends, and for on-demand deployments, which cost
    /// nothing when idle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_expires_at: Option<DateTime<Utc>>,
    /// How long this run's no-commitment Provisioned Throughput serves, in hours (fractions allowed):
    /// the stack's `PT_TTL_HOURS`, or shorter when the dataset's `distillery-pt-ttl-hours` metadata
    /// asks. Recorded at validation for provisioned runs; the provisioner sets
    /// `serving_expires_at` from it when the throughput goes InService (runs recorded before it
    /// existed get the default, [`super::cost::DEFAULT_PT_TTL_HOURS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pt_ttl_hours: Option<f64>,
    /// The expiry the *expiring soon* message was sent for. An extension moves
    /// `serving_expires_at`, so the new expiry gets its own warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_warning_sent_for: Option<DateTime<Utc>>,
    /// When the run's serving was deleted (`retired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationSummary>,
    /// The quality gate as settled at validation (held-out slice, threshold), or why there is
    /// none. `None` on runs recorded before the gate existed: treated as off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_gate: Option<crate::domain::evaluation::GatePlan>,
    /// The quality gate's result, once the held-out evaluation has run (`model-evaluator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<crate::domain::evaluation::EvaluationRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// The validated bytes the job trains on (S3 datasets; `None` for invocation-log runs and for
    /// rejected datasets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<DatasetSnapshot>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    #[serde(default)]
    pub deliveries: Vec<DeliveryRecord>,
    /// The Step Functions execution that created the run and owns it: a retried step of that
    /// execution resumes the run; any other execution for the same run ends as a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_execution: Option<String>,
    /// The run this one retries (`distillery runs retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<RunId>,
    /// 1 for a first run, n + 1 for a retry of attempt n.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// The state machine's current wait for this run's job to end (event tracking): the task token
    /// a Bedrock job state-change event completes. Stored with the rest of the run, so it is
    /// encrypted at rest like the whole ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_wait: Option<JobWait>,
    /// The run's place in the launch queue: since when it waits and why (kept after it leaves the
    /// queue, for the record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueEntry>,
    /// Its priority in the launch queue (`x-amz-meta-distillery-priority`; normal when absent).
    #[serde(default, skip_serializing_if = "QueuePriority::is_normal")]
    pub priority: QueuePriority,
}

/// A run waiting for a job slot (`queued`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueEntry {
    /// When the run first joined the queue: its place in line (first in, first out) and the start
    /// of its `MAX_QUEUE_HOURS`.
    pub since: DateTime<Utc>,
    /// Why it waits, for people ("3 of 3 job slots taken", "Bedrock refused the job: ...").
    pub reason: String,
    /// The task token of the state machine's `WaitForSlot`, once it waits; `SendTaskSuccess` with
    /// it resumes the execution, which then launches the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
    /// After Bedrock refused the job for its quota: not offered a slot again before this time, so
    /// a run the account cannot take yet does not spin between the queue and Bedrock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_until: Option<DateTime<Utc>>,
    /// Times Bedrock refused the job (or, waiting for serving, the throughput or deployment) for
    /// its quota.
    #[serde(default)]
    pub quota_refusals: u32,
    /// The wait is for serving capacity (`serving_queued`), not for a job slot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub for_serving: bool,
    /// When a freed slot was given to the run (the order runs leave the queue in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_at: Option<DateTime<Utc>>,
}

/// One wait of the state machine for the end of a run's job (`WaitForJobEvent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobWait {
    /// Step Functions' task token of the waiting state; `SendTaskSuccess` with it resumes the
    /// execution.
    pub task_token: String,
    /// When the current wait began.
    pub since: DateTime<Utc>,
    /// How many times the execution has entered the wait (each entry after the first follows a
    /// fallback timeout with no event, and polls Bedrock once).
    pub entries: u32,
    /// Fallback polls in a row that could not read the job (carried like the poll loop's count).
    #[serde(default)]
    pub consecutive_errors: u32,
}

fn first_attempt() -> u32 {
    1
}

/// Why a ledger refuses an update: the run is not in an expected status, or the status change is
/// not a move [`RunStatus::can_move_to`] allows. Ledgers report it as a conflict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UpdateRefused(pub String);

#[cfg(test)]
mod tests;
