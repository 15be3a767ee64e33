//! Use case behind the `dataset-validator` Lambda: turn an upload (or a CLI submission, or a
//! scheduled retraining) into a run in the ledger with a verdict.
//!
//! Steps for an S3 dataset: ignore keys outside the upload prefix/suffix; head the object, pinned to
//! the event's version (version id, else `If-Match` on its ETag; a key that no longer holds it makes a
//! rejected run, see `snapshot.rs`); create the run for (bucket, key, ETag) with a conditional write
//! (a duplicate event stops here with `duplicate: true`); move it to `validating`; resolve settings
//! (stack defaults + S3 metadata overrides [+ CLI overrides]) and check the key is one Bedrock
//! accepts; stream the same version through the validation engine and, in the same pass, into the
//! run's snapshot `s3://<bucket>/<SNAPSHOT_PREFIX><runId>/dataset.jsonl` (what the job trains on);
//! write the full report to `s3://<bucket>/<REPORT_PREFIX><runId>/report.json`; record the summary
//! (and the snapshot) and move to `validated` or `rejected`. Invalid data or settings are a
//! rejection (an answer, not an error); only infrastructure failures are errors.
//!
//! With the quality gate on and something served, the read takes two passes instead of one:
//! validate and hash each record's prompt, choose the held-out slice, then read the same version
//! again into the training snapshot (without the slice) and `runs/<runId>/heldout.jsonl`; the run's
//! `quality_gate` records the outcome (docs/evaluation.md, "The slice at validation").
//!
//! A scheduled run trains on Bedrock invocation logs (`INVOCATION_LOGS_S3_URI`), in one of two
//! modes (`LOG_RUN_MODE`):
//! - `native`: there are no lines to check here (Bedrock reads and filters the logs itself), so
//!   once its settings check out it is recorded as `validated` directly, with `records: 0`;
//! - `curated` (the default): the run covers a window of the logs (`window.rs`: since the
//!   schedule's last successful run, else `LOOKBACK_DAYS`), recorded on the run; the eligible
//!   records of the window become the run's snapshot, validated like an upload, and fewer than
//!   `MIN_NEW_RECORDS` of them end the run `skipped` ([`DatasetValidatorService::skip_run`]).

mod active;
mod config;
mod curate;
pub use curate::FROM_LOGS_FILE;
mod held_out;
mod input;
mod object_run;

use object_run::{resumable, EventVersion, ObjectRequest};
pub use object_run::{run_for_object, ObjectVersion};
mod schedule;
pub use schedule::skip_reason;
mod snapshot;
mod window;

pub use config::{
    InvocationLogsSource, ValidatorConfig, LOG_RUN_MODE_VAR, LOOKBACK_DAYS_VAR, MIN_NEW_RECORDS_VAR,
};
pub use input::{
    split_owner, S3BucketRef, S3ObjectCreatedDetail, S3ObjectCreatedEvent, S3ObjectRef,
    SchedulePayload, SubmitPayload, ValidateInput,
};
pub use snapshot::changed_reason;
pub use window::{
    window_end, window_start, WindowStart, RUNS_SEARCHED_PER_STATUS, WINDOW_ADVANCING,
};

use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;

use crate::app::evaluate_model::HELD_OUT_FILE;
use crate::domain::cost::{self, CostEstimate, CostInputs, TokenCounts};
use crate::domain::errors::{ErrorType, StepError};
use crate::domain::evaluation::{select_held_out, setting, GatePlan, GateSetting, HeldOut};
use crate::domain::invocation_logs::curate::CurationSummary;
use crate::domain::naming;
use crate::domain::run::{
    DatasetLocation, LogRunMode, LogWindow, Run, RunId, RunSource, RunStatus, RunUpdate,
    ValidationSummary,
};
use crate::domain::settings::{OverrideSources, RunSettings, ServingMode, SettingsOverrides};
use crate::domain::snapshot::{DatasetSnapshot, ObjectPin};
use crate::domain::validation::{DatasetValidator, ValidationOptions, ValidationReport};
use crate::ports::{
    Clock, DatasetChunks, DatasetStore, ObjectInfo, ObjectLister, PortError, RunLedger,
};

/// How many errors are kept on the run record (the report has them all, up to its cap).
pub const FIRST_ERRORS_ON_RUN: usize = 5;

/// The step's output (contract in docs/contracts.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateDatasetOutput {
    pub run_id: Option<RunId>,
    pub duplicate: bool,
    pub ignored: bool,
    /// A scheduled curated run with too few new records: recorded `skipped`, nothing to launch.
    #[serde(default)]
    pub skipped: bool,
    pub valid: bool,
    pub status: Option<RunStatus>,
    pub serving: Option<ServingMode>,
    pub report_uri: Option<String>,
    pub records: u64,
    pub invalid_records: u64,
}

impl ValidateDatasetOutput {
    fn ignored() -> Self {
        ValidateDatasetOutput {
            run_id: None,
            duplicate: false,
            ignored: true,
            skipped: false,
            valid: false,
            status: None,
            serving: None,
            report_uri: None,
            records: 0,
            invalid_records: 0,
        }
    }

    fn for_run(run: &Run, duplicate: bool) -> Self {
        let v = run.validation.clone().unwrap_or_default();
        ValidateDatasetOutput {
            run_id: Some(run.run_id.clone()),
            duplicate,
            ignored: false,
            skipped: run.status == RunStatus::Skipped,
            valid: v.valid && !matches!(run.status, RunStatus::Rejected | RunStatus::Skipped),
            status: Some(run.status),
            serving: Some(run.settings.serving),
            report_uri: v.report_uri,
            records: v.records,
            invalid_records: v.invalid_records,
        }
    }
}

/// The full report written to S3: what was checked, with which settings, and every finding.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredReport<'a> {
    run_id: &'a RunId,
    dataset: &'a DatasetLocation,
    settings: &'a RunSettings,
    #[serde(skip_serializing_if = "Option::is_none")]
    settings_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    validation: Option<&'a ValidationReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    /// How the object was read: `{"pinnedBy": "versionId" | "ifMatch", ...}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    read: Option<&'a ObjectPin>,
    /// Where the validated bytes were kept (valid datasets only).
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<&'a DatasetSnapshot>,
    /// What the run would cost (valid datasets only), checked against the budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_estimate: Option<&'a CostEstimate>,
    /// The run's quality gate (validated datasets only): off, skipped with the reason, or armed
    /// with the held-out file (uri, records, SHA-256) and the threshold with its origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    quality_gate: Option<&'a GatePlan>,
    /// A curated invocation-log run: the window read and what it held.
    #[serde(skip_serializing_if = "Option::is_none")]
    log_window: Option<LogWindow>,
    /// A skipped run: the new eligible records found in the window, and the minimum.
    #[serde(skip_serializing_if = "Option::is_none")]
    eligible_records: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_new_records: Option<u64>,
    /// A curated invocation-log run: what the window's logs held and which records were chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    curation: Option<&'a CurationSummary>,
}

impl<'a> StoredReport<'a> {
    /// A report about `run` that has found nothing yet: the run's recorded settings, every other
    /// field empty; each caller fills in what it has.
    fn about(run: &'a Run) -> Self {
        StoredReport {
            run_id: &run.run_id,
            dataset: &run.dataset,
            settings: &run.settings,
            settings_error: None,
            validation: None,
            note: None,
            read: None,
            snapshot: None,
            cost_estimate: None,
            quality_gate: None,
            log_window: None,
            eligible_records: None,
            min_new_records: None,
            curation: None,
        }
    }
}

/// Validates a streamed dataset: each chunk is pushed into the (sans-I/O) validation engine as it
/// arrives, so memory stays bounded whatever the object's size. Only a read failure is `Err`.
pub async fn validate_chunks(
    mut chunks: DatasetChunks,
    options: &ValidationOptions,
) -> Result<ValidationReport, PortError> {
    let mut validator = DatasetValidator::new(options.clone());
    while let Some(chunk) = chunks.next().await {
        validator.push_bytes(&chunk?);
    }
    Ok(validator.finish())
}

pub struct DatasetValidatorService {
    pub ledger: Arc<dyn RunLedger>,
    pub store: Arc<dyn DatasetStore>,
    /// Lists the invocation logs of a curated scheduled run.
    pub lister: Arc<dyn ObjectLister>,
    pub clock: Arc<dyn Clock>,
    pub config: ValidatorConfig,
}

impl DatasetValidatorService {
    /// Handles one event (any of the three inputs), bare or wrapped with its owner execution.
    pub async fn handle(&self, event: Value) -> Result<ValidateDatasetOutput, StepError> {
        let (owner, event) = split_owner(event);
        let owner = owner.as_deref();
        match ValidateInput::parse(event)? {
            ValidateInput::ObjectCreated(e) => {
                let o = &e.detail.object;
                let event_version = EventVersion {
                    etag: o.etag.clone().or(o.e_tag.clone()),
                    version_id: o.version_id.clone(),
                    size: o.size,
                };
                let req = ObjectRequest {
                    source: RunSource::S3Upload,
                    bucket: &e.detail.bucket.name,
                    key: &o.key,
                    event: Some(event_version),
                    cli: &SettingsOverrides::default(),
                    retry_of: None,
                    owner,
                };
                self.handle_object(req).await
            }
            ValidateInput::Submit(p) => {
                let req = ObjectRequest {
                    source: RunSource::Cli,
                    bucket: &p.bucket,
                    key: &p.key,
                    event: None,
                    cli: &p.overrides,
                    retry_of: p.retry_of.as_ref(),
                    owner,
                };
                self.handle_object(req).await
            }
            ValidateInput::Schedule(p) => self.handle_schedule(&p, owner).await,
        }
    }

    fn in_upload_area(&self, key: &str) -> bool {
        key.starts_with(&self.config.upload_prefix) && key.ends_with(&self.config.upload_suffix)
    }

    async fn check_and_report(
        &self,
        run: &Run,
        info: &ObjectInfo,
        settings: Result<RunSettings, StepError>,
        curation: Option<&CurationSummary>,
    ) -> Result<ValidateDatasetOutput, StepError> {
        let bucket = &info.bucket;
        let report_key = self.config.report_key(&run.run_id);
        // Settings and the key name are checked before reading a byte: either makes the run useless.
        let precheck = settings.and_then(|s| {
            naming::check_dataset_object(&info.bucket, &info.key)
                .map(|_| s)
                .map_err(StepError::from)
        });
        // So is the stack being at its MAX_ACTIVE_RUNS.
        let precheck = match precheck {
            Ok(s) => match self.active_runs_refusal().await? {
                Some(reason) => Err(StepError::new(ErrorType::GuardrailViolation, reason)),
                None => Ok(s),
            },
            Err(e) => Err(e),
        };
        let settings = match precheck {
            Ok(s) => s,
            Err(e) => {
                let report = StoredReport {
                    settings_error: Some(&e.message),
                    curation,
                    ..StoredReport::about(run)
                };
                let uri = self.put_report(bucket, &report_key, &report).await?;
                let summary = ValidationSummary {
                    valid: false,
                    first_errors: vec![e.message.clone()],
                    report_uri: Some(uri),
                    ..Default::default()
                };
                return self.finish(run, summary, Some(e.message)).await;
            }
        };
        let options = ValidationOptions::for_student(
            &self.config.catalog,
            Some(&settings.student),
            &self.config.limits,
        );
        // The GET is pinned too: the version the HEAD described, by version id or If-Match.
        let pin = ObjectPin::from_event(info.version_id.as_deref(), Some(&info.etag)).ok_or_else(
            || {
                StepError::internal(format!(
                    "s3://{bucket}/{} has neither a version id nor an ETag to pin the read on",
                    info.key
                ))
            },
        )?;
        // The budget is checked at the end of the validation, before any snapshot is completed.
        let budget = object_run::run_budget(&self.config, &info.metadata)?;
        let budget_usd = budget.as_ref().map(|b| b.0);
        // The hours of throughput the run would keep: its own TTL (metadata may shorten it).
        let ttl = run.pt_ttl_hours.unwrap_or(self.config.pt_ttl_hours);
        let within_budget =
            |r: &ValidationReport| !self.estimate(r, &settings, ttl, budget_usd).over_budget;
        // Already checked with the settings (a refused gate rejected the run before reading).
        let gate = object_run::run_gate(&self.config, &info.metadata)?;
        let read = match gate {
            // Something is bought to gate: hold records out (two passes).
            Some(gate) if settings.serving != ServingMode::None => {
                self.read_with_slice(run, info, &pin, &options, &gate, within_budget)
                    .await?
            }
            _ => {
                let plan = match gate {
                    None => GatePlan::Off,
                    Some(_) => GatePlan::Skipped {
                        reason: setting::SERVING_NONE_REASON.into(),
                    },
                };
                self.read_into_snapshot(run, info, &pin, &options, within_budget)
                    .await?
                    .map(|(report, snapshot)| (report, snapshot, plan))
            }
        };
        let (report, snapshot, plan) = match read {
            Ok(read) => read,
            Err(reason) => {
                tracing::info!(%reason, "the announced version is gone; rejected");
                return self.reject_unread(run, Some(&pin), reason).await;
            }
        };
        // Only a validated run has a gate; a rejected one never gets that far.
        let plan = snapshot.is_some().then_some(plan);
        tracing::info!(
            valid = report.valid,
            records = report.records,
            invalid_records = report.invalid_records,
            errors = report.error_count,
            warnings = report.warning_count,
            "dataset validated"
        );
        // The estimate needs a valid dataset's token figures; an invalid one is rejected anyway.
        let estimate = report
            .valid
            .then(|| self.estimate(&report, &settings, ttl, budget_usd));
        let over_budget = match (&estimate, &budget) {
            (Some(e), Some((_, origin))) => e.over_budget_error(origin),
            _ => None,
        };
        if let Some(e) = &estimate {
            tracing::info!(
                low_usd = e.low_usd,
                high_usd = e.high_usd,
                budget_usd = e.budget_usd,
                over_budget = e.over_budget,
                "cost estimated"
            );
        }
        let stored = StoredReport {
            settings: &settings,
            settings_error: over_budget.as_ref().map(|e| e.message.as_str()),
            validation: Some(&report),
            read: Some(&pin),
            snapshot: snapshot.as_ref(),
            cost_estimate: estimate.as_ref(),
            quality_gate: plan.as_ref(),
            log_window: run.dataset.log_window(),
            curation,
            ..StoredReport::about(run)
        };
        let uri = self.put_report(bucket, &report_key, &stored).await?;
        let mut summary = report.summary(FIRST_ERRORS_ON_RUN);
        summary.report_uri = Some(uri);
        summary.cost_estimate = estimate;
        let reason = if let Some(e) = over_budget {
            // The bytes are fine; the run is not: rejected, so nothing is launched (the launcher
            // only takes `validated` runs), and its snapshot was aborted, like an invalid one's.
            summary.valid = false;
            summary.first_errors = vec![e.message.clone()];
            Some(e.message)
        } else {
            (!report.valid).then(|| {
                let first = summary.first_errors.first().cloned().unwrap_or_default();
                format!(
                    "dataset invalid: {} error(s) in {} record(s); first: {first}",
                    report.error_count, report.records
                )
            })
        };
        let plan = if reason.is_none() { plan } else { None };
        self.finish_with_snapshot(run, summary, reason, snapshot, plan)
            .await
    }

    /// The single pass (no held-out slice): validation and the snapshot together. `Ok(Err(reason))`
    /// when the pinned version can no longer be read.
    async fn read_into_snapshot(
        &self,
        run: &Run,
        info: &ObjectInfo,
        pin: &ObjectPin,
        options: &ValidationOptions,
        keep: impl FnOnce(&ValidationReport) -> bool,
    ) -> Result<Result<(ValidationReport, Option<DatasetSnapshot>), String>, StepError> {
        let bucket = &info.bucket;
        let chunks = match self.open_pinned(info, pin).await? {
            Ok(chunks) => chunks,
            Err(reason) => return Ok(Err(reason)),
        };
        let snapshot_key = self.config.snapshot_layout(bucket).dataset_key(&run.run_id);
        let sink = self.begin_sink(bucket, &snapshot_key).await?;
        let read = snapshot::validate_into_snapshot(chunks, options, sink, pin, keep)
            .await
            // Typed as the port failed (a denied write is AccessDenied, not worth a retry).
            .map_err(|e| {
                e.context(format!(
                    "reading s3://{bucket}/{} into its snapshot s3://{bucket}/{snapshot_key}",
                    info.key
                ))
            })?;
        Ok(Ok(read))
    }

    /// Opens exactly the pinned version; `Ok(Err(reason))` when it can no longer be read.
    async fn open_pinned(
        &self,
        info: &ObjectInfo,
        pin: &ObjectPin,
    ) -> Result<Result<DatasetChunks, String>, StepError> {
        let bucket = &info.bucket;
        match self.store.open(bucket, &info.key, Some(pin)).await {
            Ok((_, chunks)) => Ok(Ok(chunks)),
            Err(PortError::ObjectChanged(detail)) => {
                Ok(Err(changed_reason(bucket, &info.key, pin, &detail)))
            }
            Err(e) => Err(e.context(format!("opening s3://{bucket}/{}", info.key))),
        }
    }

    async fn begin_sink(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Box<dyn crate::ports::SnapshotSink>, StepError> {
        self.store
            .begin_snapshot(bucket, key)
            .await
            .map_err(|e| e.context(format!("starting s3://{bucket}/{key}")))
    }

    /// The cost range of this run from the report's token figures.
    fn estimate(
        &self,
        report: &ValidationReport,
        settings: &RunSettings,
        pt_ttl_hours: f64,
        budget: Option<f64>,
    ) -> CostEstimate {
        let st = &report.stats;
        let tokens = TokenCounts {
            prompts: st.labelled + st.unlabelled,
            prompt_tokens: st.estimated_input_tokens,
            given_answer_tokens: st.estimated_output_tokens,
        };
        let region = self.config.serving_region(settings);
        let inputs = CostInputs {
            settings,
            region: &region,
            pt_ttl_hours,
        };
        cost::estimate(&tokens, &inputs, &self.config.prices).with_budget(budget)
    }

    async fn put_report(
        &self,
        bucket: &str,
        key: &str,
        report: &StoredReport<'_>,
    ) -> Result<String, StepError> {
        let body = serde_json::to_vec_pretty(report)
            .map_err(|e| StepError::internal(format!("cannot encode the report: {e}")))?;
        self.store
            .put(bucket, key, body, "application/json")
            .await
            .map_err(|e| e.context(format!("writing the report to s3://{bucket}/{key}")))
    }

    /// Records the verdict: `validated` without a reason, `rejected` with one.
    async fn finish(
        &self,
        run: &Run,
        summary: ValidationSummary,
        rejection: Option<String>,
    ) -> Result<ValidateDatasetOutput, StepError> {
        self.finish_with_snapshot(run, summary, rejection, None, None)
            .await
    }

    /// [`Self::finish`], recording where the validated bytes were kept and the run's quality gate
    /// (validated runs only: the same update that marks them validated).
    async fn finish_with_snapshot(
        &self,
        run: &Run,
        summary: ValidationSummary,
        rejection: Option<String>,
        snapshot: Option<DatasetSnapshot>,
        quality_gate: Option<GatePlan>,
    ) -> Result<ValidateDatasetOutput, StepError> {
        let mut update = match &rejection {
            None => RunUpdate::to(RunStatus::Validated),
            Some(reason) => {
                let mut u = RunUpdate::to(RunStatus::Rejected).with_detail(reason.clone());
                u.failure_reason = Some(reason.clone());
                u
            }
        };
        update.validation = Some(summary);
        update.snapshot = snapshot;
        update.quality_gate = quality_gate.filter(|_| rejection.is_none());
        let run = self
            .ledger
            .update(&run.run_id, &[RunStatus::Validating], &update)
            .await
            .map_err(|e| e.context("recording the verdict"))?;
        tracing::info!(status = %run.status, "verdict recorded");
        Ok(ValidateDatasetOutput::for_run(&run, false))
    }
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod object_run_tests;

#[cfg(test)]
mod security_tests;
