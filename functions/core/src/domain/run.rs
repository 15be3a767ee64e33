//! A run: one dataset's journey from upload to a served model, as recorded in the ledger.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::settings::RunSettings;
use super::snapshot::DatasetSnapshot;

/// Stable run identifier: `run-` + 20 hex chars.
///
/// For an S3 dataset it is derived from (bucket, key, ETag), so the same object version always maps
/// to the same run and a duplicated event can never start a second job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl RunId {
    pub fn for_object(bucket: &str, key: &str, etag: &str) -> Self {
        // The ETag arrives quoted from some APIs and bare from others: normalise before hashing.
        let etag = etag.trim_matches('"');
        Self::from_parts(&["s3", bucket, key, etag])
    }

    /// For a scheduled retraining: one run per schedule name per scheduled time.
    pub fn for_schedule(schedule: &str, scheduled_time: &str) -> Self {
        Self::from_parts(&["schedule", schedule, scheduled_time])
    }

    fn from_parts(parts: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        for p in parts {
            hasher.update(p.as_bytes());
            hasher.update([0u8]);
        }
        let digest = hasher.finalize();
        RunId(format!("run-{}", &hex::encode(digest)[..20]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

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
    },
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
}

impl RunStatus {
    pub const ALL: [RunStatus; 12] = [
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
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        RunStatus::ALL.into_iter().find(|st| st.as_str() == norm)
    }

    /// No further transition is expected (Completed can still move to Provisioning).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Rejected
                | RunStatus::Failed
                | RunStatus::Stopped
                | RunStatus::Ready
                | RunStatus::ProvisioningFailed
        )
    }

    /// The allowed moves. Anything else is refused by the ledger, so a retried or late Lambda can
    /// never move a run backwards.
    pub fn can_move_to(self, next: RunStatus) -> bool {
        use RunStatus::*;
        let allowed: &[RunStatus] = match self {
            Received => &[Validating, Failed],
            Validating => &[Rejected, Validated, Failed],
            Rejected => &[],
            Validated => &[Launching, Failed],
            Launching => &[Training, Failed],
            Training => &[Training, Completed, Failed, Stopped],
            Completed => &[Provisioning, Ready, Failed],
            Failed => &[],
            Stopped => &[],
            Provisioning => &[Provisioning, Ready, ProvisioningFailed],
            Ready => &[],
            ProvisioningFailed => &[],
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationSummary>,
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
}

/// Why a ledger refuses an update: the run is not in an expected status, or the status change is
/// not a move [`RunStatus::can_move_to`] allows. Ledgers report it as a conflict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UpdateRefused(pub String);

impl Run {
    /// The rule every ledger enforces before writing `update`: the run's status is one of
    /// `expected` (an empty `expected` means "any status", for field-only updates such as delivery
    /// records), and a status change is a move [`RunStatus::can_move_to`] allows.
    pub fn check_update(
        &self,
        expected: &[RunStatus],
        update: &RunUpdate,
    ) -> Result<(), UpdateRefused> {
        if !expected.is_empty() && !expected.contains(&self.status) {
            let want: Vec<&str> = expected.iter().map(|s| s.as_str()).collect();
            return Err(UpdateRefused(format!(
                "run {} is {}, expected {}",
                self.run_id,
                self.status,
                want.join(" or ")
            )));
        }
        if let Some(next) = update.status {
            if !self.status.can_move_to(next) {
                return Err(UpdateRefused(format!(
                    "run {} cannot move from {} to {}",
                    self.run_id, self.status, next
                )));
            }
        }
        Ok(())
    }

    /// Newest first, ties broken by run id, so every ledger lists runs in the same stable order.
    pub fn sort_newest_first(runs: &mut [Run]) {
        runs.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.run_id.cmp(&b.run_id))
        });
    }

    /// A new run in `Received`, with its first history entry.
    pub fn new(
        run_id: RunId,
        source: RunSource,
        dataset: DatasetLocation,
        settings: RunSettings,
        now: DateTime<Utc>,
    ) -> Self {
        Run {
            run_id,
            source,
            dataset,
            settings,
            status: RunStatus::Received,
            training_detail: None,
            job_name: None,
            job_arn: None,
            custom_model_name: None,
            custom_model_arn: None,
            provisioned_model_name: None,
            provisioned_model_arn: None,
            validation: None,
            failure_reason: None,
            snapshot: None,
            created_at: now,
            updated_at: now,
            launched_at: None,
            finished_at: None,
            history: vec![HistoryEntry {
                at: now,
                from: None,
                to: RunStatus::Received,
                detail: None,
            }],
            deliveries: Vec::new(),
        }
    }
}

/// Field changes applied together with (or without) a status change. `None` leaves a field as is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunUpdate {
    pub status: Option<RunStatus>,
    /// Free text recorded in the history entry of a status change.
    pub detail: Option<String>,
    pub training_detail: Option<TrainingDetail>,
    pub job_name: Option<String>,
    pub job_arn: Option<String>,
    pub custom_model_name: Option<String>,
    pub custom_model_arn: Option<String>,
    pub provisioned_model_name: Option<String>,
    pub provisioned_model_arn: Option<String>,
    pub validation: Option<ValidationSummary>,
    pub failure_reason: Option<String>,
    pub snapshot: Option<DatasetSnapshot>,
    pub launched_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub delivery: Option<DeliveryRecord>,
}

impl RunUpdate {
    pub fn to(status: RunStatus) -> Self {
        RunUpdate {
            status: Some(status),
            ..Default::default()
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Applies the update to a run in memory (used by the in-memory ledger and to compute the new
    /// record before a conditional write). The caller has already checked the transition.
    pub fn apply_to(&self, run: &mut Run, now: DateTime<Utc>) {
        if let Some(next) = self.status {
            run.history.push(HistoryEntry {
                at: now,
                from: Some(run.status),
                to: next,
                detail: self.detail.clone(),
            });
            run.status = next;
        }
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { run.$f = Some(v.clone()); } )* };
        }
        set!(
            training_detail,
            job_name,
            job_arn,
            custom_model_name,
            custom_model_arn,
            provisioned_model_name,
            provisioned_model_arn,
            validation,
            failure_reason,
            snapshot,
            launched_at,
            finished_at
        );
        if let Some(d) = &self.delivery {
            run.deliveries.push(d.clone());
        }
        run.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_is_stable_and_ignores_etag_quotes() {
        let a = RunId::for_object("b", "incoming/x.jsonl", "\"abc\"");
        let b = RunId::for_object("b", "incoming/x.jsonl", "abc");
        let c = RunId::for_object("b", "incoming/x.jsonl", "abd");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.as_str().len(), 24);
    }

    #[test]
    fn transitions_never_go_backwards() {
        use RunStatus::*;
        assert!(Received.can_move_to(Validating));
        assert!(!Training.can_move_to(Launching));
        assert!(!Ready.can_move_to(Provisioning));
        assert!(Completed.can_move_to(Provisioning));
        for s in RunStatus::ALL {
            if s.is_terminal() {
                assert!(RunStatus::ALL.iter().all(|n| !s.can_move_to(*n)), "{s}");
            }
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(
            RunStatus::parse("provisioning-failed"),
            Some(ProvisioningFailed)
        );
    }
}
