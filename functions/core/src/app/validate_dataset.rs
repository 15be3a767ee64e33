//! Use case behind the `dataset-validator` Lambda: turn an upload (or a CLI submission, or a
//! scheduled retraining) into a run in the ledger with a verdict.
//!
//! Steps for an S3 dataset: ignore keys outside the upload prefix/suffix; head the object; create the
//! run for (bucket, key, ETag) with a conditional write (a duplicate event stops here with
//! `duplicate: true`); move it to `validating`; resolve settings (stack defaults + S3 metadata
//! overrides [+ CLI overrides]) and check the key is one Bedrock accepts; stream the object through
//! the validation engine; write the full report to `s3://<bucket>/<REPORT_PREFIX><runId>/report.json`;
//! record the summary and move to `validated` or `rejected`. Invalid data or settings are a
//! rejection (an answer, not an error); only infrastructure failures are errors.
//!
//! A scheduled run trains on Bedrock invocation logs (`INVOCATION_LOGS_S3_URI`): there are no lines
//! to check here (Bedrock reads and filters the logs itself), so once its settings check out it is
//! recorded as `validated` directly, with `records: 0`.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;

use crate::config::{process_var, Env};
use crate::domain::catalog::{Limits, ModelCatalog};
use crate::domain::errors::{ErrorType, StepError};
use crate::domain::naming;
use crate::domain::run::{
    DatasetLocation, Run, RunId, RunSource, RunStatus, RunUpdate, ValidationSummary,
};
use crate::domain::settings::{
    Commitment, RunSettings, ServingMode, ServingPolicy, SettingsOverrides,
};
use crate::domain::validation::{DatasetValidator, ValidationOptions, ValidationReport};
use crate::ports::{
    Clock, CreateOutcome, DatasetChunks, DatasetStore, ObjectInfo, PortError, RunLedger,
};

/// How many errors are kept on the run record (the report has them all, up to its cap).
pub const FIRST_ERRORS_ON_RUN: usize = 5;

/// Where scheduled runs train from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationLogsSource {
    pub s3_uri: String,
    pub request_metadata_filters: Option<Value>,
    pub use_prompt_response: bool,
}

/// The validator's configuration (environment variables listed in docs/contracts.md).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatorConfig {
    pub upload_prefix: String,
    pub upload_suffix: String,
    pub report_prefix: String,
    pub defaults: RunSettings,
    pub policy: ServingPolicy,
    pub invocation_logs: Option<InvocationLogsSource>,
    pub schedule_bucket: Option<String>,
    pub catalog: ModelCatalog,
    pub limits: Limits,
}

impl ValidatorConfig {
    /// Reads the process environment (see [`crate::config`] for what "unset" means).
    pub fn from_env() -> Result<Self, StepError> {
        Self::from_lookup(process_var)
    }

    /// Reads the configuration through `get` (the environment in Lambda, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, StepError> {
        let env = Env::new(get);
        let catalog = ModelCatalog::load_with(&env)?;
        let limits = Limits::load_with(&env)?;
        let serving = env.parsed(
            "SERVING_MODE",
            ServingMode::None,
            "'none' or 'provisioned'",
            ServingMode::parse,
        )?;
        let commitment = env.parsed(
            "COMMITMENT",
            Commitment::None,
            "None, OneMonth or SixMonths",
            Commitment::parse,
        )?;
        let max_response_length = env.whole_number(
            "DEFAULT_MAX_RESPONSE_LENGTH",
            limits.job.default_max_response_length_for_inference,
        )?;
        let model_units = env.whole_number("MODEL_UNITS", 1)?;
        let max_model_units =
            env.whole_number("MAX_MODEL_UNITS", limits.throughput.default_max_model_units)?;
        let allowed_commitments = env
            .commitments("ALLOWED_COMMITMENTS")?
            .unwrap_or_else(|| limits.throughput.default_allowed_commitments.clone());
        let invocation_logs = match env.optional_string("INVOCATION_LOGS_S3_URI") {
            None => None,
            Some(s3_uri) => Some(InvocationLogsSource {
                s3_uri,
                request_metadata_filters: env.json("REQUEST_METADATA_FILTERS")?,
                use_prompt_response: env.flag("USE_PROMPT_RESPONSE", false)?,
            }),
        };
        Ok(ValidatorConfig {
            upload_prefix: env.string_or("UPLOAD_PREFIX", "incoming/"),
            upload_suffix: env.string_or("UPLOAD_SUFFIX", ".jsonl"),
            report_prefix: env.string_or("REPORT_PREFIX", "reports/"),
            defaults: RunSettings {
                teacher: env.string_or("DEFAULT_TEACHER", "amazon.nova-pro-v1:0"),
                student: env.string_or("DEFAULT_STUDENT", "amazon.nova-lite-v1:0:300k"),
                max_response_length,
                serving,
                model_units,
                commitment,
            },
            policy: ServingPolicy {
                max_model_units,
                allowed_commitments,
            },
            invocation_logs,
            schedule_bucket: env.optional_string("SCHEDULE_BUCKET"),
            catalog,
            limits,
        })
    }

    /// Where a run's report goes (the key, in the dataset's bucket).
    pub fn report_key(&self, run_id: &RunId) -> String {
        format!("{}{}/report.json", self.report_prefix, run_id)
    }
}

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
}

/// EventBridge Scheduler's payload for a retraining from invocation logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulePayload {
    pub schedule_name: String,
    pub scheduled_time: String,
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
            StepError::bad_event(format!("not a valid {what} event: {e}"))
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
            "" => Err(StepError::bad_event(
                "event has no 'source' (expected aws.s3, distillery.cli or distillery.schedule)",
            )),
            other => Err(StepError::bad_event(format!(
                "unknown event source '{other}' (expected aws.s3, distillery.cli or distillery.schedule)"
            ))),
        }
    }
}

/// The step's output (contract in docs/contracts.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateDatasetOutput {
    pub run_id: Option<RunId>,
    pub duplicate: bool,
    pub ignored: bool,
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
            valid: v.valid && run.status != RunStatus::Rejected,
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
    pub clock: Arc<dyn Clock>,
    pub config: ValidatorConfig,
}

impl DatasetValidatorService {
    /// Handles one event (any of the three inputs).
    pub async fn handle(&self, event: Value) -> Result<ValidateDatasetOutput, StepError> {
        match ValidateInput::parse(event)? {
            ValidateInput::ObjectCreated(e) => {
                let etag = e
                    .detail
                    .object
                    .etag
                    .clone()
                    .or(e.detail.object.e_tag.clone());
                self.handle_object(
                    RunSource::S3Upload,
                    &e.detail.bucket.name,
                    &e.detail.object.key,
                    etag,
                    &SettingsOverrides::default(),
                )
                .await
            }
            ValidateInput::Submit(p) => {
                self.handle_object(RunSource::Cli, &p.bucket, &p.key, None, &p.overrides)
                    .await
            }
            ValidateInput::Schedule(p) => self.handle_schedule(&p).await,
        }
    }

    fn in_upload_area(&self, key: &str) -> bool {
        key.starts_with(&self.config.upload_prefix) && key.ends_with(&self.config.upload_suffix)
    }

    async fn handle_object(
        &self,
        source: RunSource,
        bucket: &str,
        key: &str,
        event_etag: Option<String>,
        cli_overrides: &SettingsOverrides,
    ) -> Result<ValidateDatasetOutput, StepError> {
        if !self.in_upload_area(key) {
            tracing::info!(
                bucket,
                key,
                "key is outside the upload prefix/suffix; ignored"
            );
            return Ok(ValidateDatasetOutput::ignored());
        }
        let info = self
            .store
            .head(bucket, key)
            .await
            .map_err(|e| e.context(format!("reading s3://{bucket}/{key}")))?;
        // The event's ETag names the version that was uploaded; HEAD may already see a newer one.
        let etag = event_etag.unwrap_or_else(|| info.etag.clone());
        let run_id = RunId::for_object(bucket, key, &etag);
        let span = tracing::info_span!("run", run_id = %run_id);
        self.validate_object(source, run_id, info, etag, cli_overrides)
            .instrument(span)
            .await
    }

    /// Creates the run, or reports the existing one as a duplicate.
    async fn create_or_find(&self, run: Run) -> Result<Result<Run, Run>, StepError> {
        match self
            .ledger
            .create(&run)
            .await
            .map_err(|e| e.context("recording the run"))?
        {
            CreateOutcome::Created(run) => {
                tracing::info!(dataset = %run.dataset.s3_uri(), "run created");
                Ok(Ok(run))
            }
            CreateOutcome::AlreadyExists(existing) => {
                tracing::info!(status = %existing.status, "duplicate event: run already exists");
                Ok(Err(existing))
            }
        }
    }

    fn resolve_settings(
        &self,
        metadata: &BTreeMap<String, String>,
        cli: &SettingsOverrides,
    ) -> Result<RunSettings, StepError> {
        let mut o = SettingsOverrides::from_metadata(metadata)?;
        // CLI flags win over object metadata.
        macro_rules! cli_wins {
            ($($f:ident),*) => { $( if cli.$f.is_some() { o.$f = cli.$f.clone(); } )* };
        }
        cli_wins!(
            teacher,
            student,
            max_response_length,
            serving,
            model_units,
            commitment
        );
        RunSettings::resolve(
            &self.config.defaults,
            &o,
            &self.config.catalog,
            &self.config.limits,
            &self.config.policy,
        )
    }

    async fn validate_object(
        &self,
        source: RunSource,
        run_id: RunId,
        info: ObjectInfo,
        etag: String,
        cli_overrides: &SettingsOverrides,
    ) -> Result<ValidateDatasetOutput, StepError> {
        let settings = self.resolve_settings(&info.metadata, cli_overrides);
        let dataset = DatasetLocation::S3Object {
            bucket: info.bucket.clone(),
            key: info.key.clone(),
            etag: etag.trim_matches('"').to_string(),
            version_id: info.version_id.clone(),
            size: info.size,
        };
        // A run with rejected settings still needs settings on record: the stack defaults.
        let recorded = settings
            .clone()
            .unwrap_or_else(|_| self.config.defaults.clone());
        let run = Run::new(
            run_id.clone(),
            source,
            dataset.clone(),
            recorded,
            self.clock.now(),
        );
        let run = match self.create_or_find(run).await? {
            Ok(run) => run,
            Err(existing) => return Ok(ValidateDatasetOutput::for_run(&existing, true)),
        };
        self.ledger
            .update(
                &run_id,
                &[RunStatus::Received],
                &RunUpdate::to(RunStatus::Validating),
            )
            .await
            .map_err(|e| e.context("moving the run to validating"))?;

        let result = self.check_and_report(&run, &info, settings).await;
        match result {
            Ok(out) => Ok(out),
            Err(e) => {
                // The run exists and a retry would see a duplicate: record the failure so the run
                // does not sit in `validating`, then surface the error for the notifier.
                let reason = format!("validation could not finish: {}", e.message);
                let mut update = RunUpdate::to(RunStatus::Failed).with_detail(reason.clone());
                update.failure_reason = Some(reason);
                if let Err(le) = self
                    .ledger
                    .update(&run_id, &[RunStatus::Validating], &update)
                    .await
                {
                    tracing::error!(error = %le, "could not record the failure on the run");
                }
                Err(StepError::new(
                    match e.error_type {
                        ErrorType::Throttled | ErrorType::Transient | ErrorType::QuotaExceeded => {
                            ErrorType::Internal
                        }
                        t => t,
                    },
                    e.message,
                ))
            }
        }
    }

    async fn check_and_report(
        &self,
        run: &Run,
        info: &ObjectInfo,
        settings: Result<RunSettings, StepError>,
    ) -> Result<ValidateDatasetOutput, StepError> {
        let bucket = &info.bucket;
        let report_key = self.config.report_key(&run.run_id);
        // Settings and the key name are checked before reading a byte: either makes the run useless.
        let precheck = settings.and_then(|s| {
            naming::check_dataset_object(&info.bucket, &info.key)
                .map(|_| s)
                .map_err(StepError::from)
        });
        let settings = match precheck {
            Ok(s) => s,
            Err(e) => {
                let report = StoredReport {
                    run_id: &run.run_id,
                    dataset: &run.dataset,
                    settings: &run.settings,
                    settings_error: Some(&e.message),
                    validation: None,
                    note: None,
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
        let (_, chunks) = self
            .store
            .open(bucket, &info.key)
            .await
            .map_err(|e| e.context(format!("opening s3://{bucket}/{}", info.key)))?;
        let report = validate_chunks(chunks, &options).await.map_err(|e| {
            StepError::new(
                ErrorType::Transient,
                format!("reading s3://{bucket}/{}: {e}", info.key),
            )
        })?;
        tracing::info!(
            valid = report.valid,
            records = report.records,
            invalid_records = report.invalid_records,
            errors = report.error_count,
            warnings = report.warning_count,
            "dataset validated"
        );
        let stored = StoredReport {
            run_id: &run.run_id,
            dataset: &run.dataset,
            settings: &settings,
            settings_error: None,
            validation: Some(&report),
            note: None,
        };
        let uri = self.put_report(bucket, &report_key, &stored).await?;
        let mut summary = report.summary(FIRST_ERRORS_ON_RUN);
        summary.report_uri = Some(uri);
        let reason = (!report.valid).then(|| {
            let first = summary.first_errors.first().cloned().unwrap_or_default();
            format!(
                "dataset invalid: {} error(s) in {} record(s); first: {first}",
                report.error_count, report.records
            )
        });
        self.finish(run, summary, reason).await
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
        let mut update = match &rejection {
            None => RunUpdate::to(RunStatus::Validated),
            Some(reason) => {
                let mut u = RunUpdate::to(RunStatus::Rejected).with_detail(reason.clone());
                u.failure_reason = Some(reason.clone());
                u
            }
        };
        update.validation = Some(summary);
        let run = self
            .ledger
            .update(&run.run_id, &[RunStatus::Validating], &update)
            .await
            .map_err(|e| e.context("recording the verdict"))?;
        tracing::info!(status = %run.status, "verdict recorded");
        Ok(ValidateDatasetOutput::for_run(&run, false))
    }

    async fn handle_schedule(
        &self,
        p: &SchedulePayload,
    ) -> Result<ValidateDatasetOutput, StepError> {
        let logs = self.config.invocation_logs.clone().ok_or_else(|| {
            StepError::config("a scheduled run needs INVOCATION_LOGS_S3_URI (the Bedrock invocation log location)")
        })?;
        let run_id = RunId::for_schedule(&p.schedule_name, &p.scheduled_time);
        let span = tracing::info_span!("run", run_id = %run_id);
        async {
            let settings = RunSettings::resolve(
                &self.config.defaults,
                &SettingsOverrides::default(),
                &self.config.catalog,
                &self.config.limits,
                &self.config.policy,
            );
            let dataset = DatasetLocation::InvocationLogs {
                s3_uri: logs.s3_uri.clone(),
                request_metadata_filters: logs.request_metadata_filters.clone(),
                use_prompt_response: logs.use_prompt_response,
            };
            let recorded = settings
                .clone()
                .unwrap_or_else(|_| self.config.defaults.clone());
            let run = Run::new(
                run_id.clone(),
                RunSource::Schedule,
                dataset.clone(),
                recorded,
                self.clock.now(),
            );
            let run = match self.create_or_find(run).await? {
                Ok(run) => run,
                Err(existing) => return Ok(ValidateDatasetOutput::for_run(&existing, true)),
            };
            self.ledger
                .update(&run_id, &[RunStatus::Received], &RunUpdate::to(RunStatus::Validating))
                .await
                .map_err(|e| e.context("moving the run to validating"))?;
            let uri_check = naming::check_s3_uri(&logs.s3_uri).map_err(|e| e.to_string());
            let problem = match (&settings, uri_check) {
                (Err(e), _) => Some(e.message.clone()),
                (Ok(_), Err(e)) => Some(format!("INVOCATION_LOGS_S3_URI: {e}")),
                (Ok(_), Ok(())) => None,
            };
            let note = "invocation logs: Bedrock reads and filters the logs itself, so no line validation happens here";
            let report_uri = match &self.config.schedule_bucket {
                Some(bucket) => {
                    let report = StoredReport {
                        run_id: &run.run_id,
                        dataset: &dataset,
                        settings: &run.settings,
                        settings_error: problem.as_deref(),
                        validation: None,
                        note: Some(note),
                    };
                    Some(
                        self.put_report(bucket, &self.config.report_key(&run_id), &report)
                            .await?,
                    )
                }
                None => None,
            };
            let summary = ValidationSummary {
                valid: problem.is_none(),
                first_errors: problem.iter().cloned().collect(),
                report_uri,
                ..Default::default()
            };
            self.finish(&run, summary, problem).await
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ports::SystemClock;
    use crate::testing::memory::{InMemoryDatasetStore, InMemoryRunLedger};

    const BUCKET: &str = "distillery-datasets-123456789012";

    /// Moved from the validation engine's tests when the engine became sans-I/O: the streamed
    /// driver (odd-sized chunks, records straddling them) gives exactly the report of the sync one.
    #[tokio::test]
    async fn the_chunk_driver_matches_the_sync_one() {
        use crate::domain::validation::validate_reader;
        let good = good_line(1);
        let text = format!("{good}\nnot json\n").repeat(1000);
        let mut options =
            ValidationOptions::for_student(&ModelCatalog::builtin(), None, &Limits::builtin());
        options.limits.min_records = 0;
        let chunks: Vec<Result<Vec<u8>, PortError>> = text
            .as_bytes()
            .chunks(977)
            .map(|c| Ok(c.to_vec()))
            .collect();
        let from_chunks = validate_chunks(Box::pin(futures::stream::iter(chunks)), &options)
            .await
            .unwrap();
        assert_eq!(
            from_chunks,
            validate_reader(text.as_bytes(), &options).unwrap()
        );
        assert_eq!(from_chunks.invalid_records, 1000);
    }

    #[tokio::test]
    async fn a_read_failure_mid_stream_is_an_error_not_a_verdict() {
        let good = good_line(1);
        let chunks: Vec<Result<Vec<u8>, PortError>> = vec![
            Ok(format!("{good}\n").into_bytes()),
            Err(PortError::Transient("connection reset".into())),
        ];
        let options =
            ValidationOptions::for_student(&ModelCatalog::builtin(), None, &Limits::builtin());
        let err = validate_chunks(Box::pin(futures::stream::iter(chunks)), &options)
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::Transient(_)), "{err}");
    }

    pub(crate) fn good_line(i: usize) -> String {
        serde_json::json!({
            "schemaVersion": "bedrock-conversation-2024",
            "system": [{"text": "You are a support agent."}],
            "messages": [
                {"role": "user", "content": [{"text": format!("Question number {i}?")}]},
                {"role": "assistant", "content": [{"text": format!("Answer number {i}.")}]}
            ]
        })
        .to_string()
    }

    pub(crate) fn dataset(n: usize) -> String {
        (0..n).map(|i| good_line(i) + "\n").collect()
    }

    fn event(file: &str) -> Value {
        let path = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
    }

    fn service(
        store: Arc<InMemoryDatasetStore>,
    ) -> (DatasetValidatorService, Arc<InMemoryRunLedger>) {
        let ledger = Arc::new(InMemoryRunLedger::new());
        let config = ValidatorConfig::from_lookup(|k| match k {
            "INVOCATION_LOGS_S3_URI" => Some("s3://logs-bucket/bedrock-logs/".into()),
            "SCHEDULE_BUCKET" => Some(BUCKET.into()),
            _ => None,
        })
        .unwrap();
        (
            DatasetValidatorService {
                ledger: ledger.clone(),
                store,
                clock: Arc::new(SystemClock),
                config,
            },
            ledger,
        )
    }

    fn object_event(key: &str, etag: &str) -> Value {
        let mut e = event("s3-object-created.json");
        e["detail"]["object"]["key"] = key.into();
        e["detail"]["object"]["etag"] = etag.into();
        e
    }

    #[test]
    fn fixtures_parse_with_both_etag_spellings_and_aws_lambda_events() {
        for (file, want) in [
            ("s3-object-created.json", "b1946ac92492d2347c6235b4d2611184"),
            (
                "s3-object-created-moto.json",
                "\"b1946ac92492d2347c6235b4d2611184\"",
            ),
        ] {
            let v = event(file);
            let typed: aws_lambda_events::eventbridge::EventBridgeEvent<Value> =
                serde_json::from_value(v.clone()).unwrap();
            assert_eq!(typed.detail_type, "Object Created");
            let ValidateInput::ObjectCreated(e) = ValidateInput::parse(v).unwrap() else {
                panic!("{file} is not an S3 event");
            };
            let o = &e.detail.object;
            assert_eq!(o.etag.clone().or(o.e_tag.clone()).unwrap(), want);
        }
        assert!(matches!(
            ValidateInput::parse(event("submit.json")).unwrap(),
            ValidateInput::Submit(_)
        ));
        assert!(matches!(
            ValidateInput::parse(event("schedule.json")).unwrap(),
            ValidateInput::Schedule(_)
        ));
        let out: ValidateDatasetOutput =
            serde_json::from_value(event("validate-dataset-output.json")).unwrap();
        assert!(out.valid);
        let err = ValidateInput::parse(serde_json::json!({"source": "aws.s3", "detail": {}}))
            .unwrap_err();
        assert_eq!(err.error_type, ErrorType::BadEvent);
        assert!(err.message.contains("bucket"), "{}", err.message);
    }

    #[tokio::test]
    async fn keys_outside_the_upload_area_are_ignored() {
        let store = Arc::new(InMemoryDatasetStore::new());
        let (svc, ledger) = service(store);
        for key in ["other/a.jsonl", "incoming/a.csv"] {
            let out = svc.handle(object_event(key, "x")).await.unwrap();
            assert!(out.ignored && out.run_id.is_none());
        }
        assert!(ledger.all().is_empty());
    }

    #[tokio::test]
    async fn a_valid_dataset_is_validated_once_and_a_duplicate_does_nothing() {
        let store = Arc::new(InMemoryDatasetStore::new());
        let etag = store.insert(BUCKET, "incoming/support.jsonl", dataset(120), &[]);
        let (svc, ledger) = service(store.clone());
        let out = svc
            .handle(object_event("incoming/support.jsonl", &etag))
            .await
            .unwrap();
        assert!(out.valid && !out.duplicate, "{out:?}");
        assert_eq!(out.status, Some(RunStatus::Validated));
        assert_eq!(out.records, 120);
        let run_id = out.run_id.clone().unwrap();
        let report_key = format!("reports/{run_id}/report.json");
        assert_eq!(
            out.report_uri.as_deref(),
            Some(format!("s3://{BUCKET}/{report_key}").as_str())
        );
        let report: Value =
            serde_json::from_slice(&store.get_bytes(BUCKET, &report_key).unwrap()).unwrap();
        assert_eq!(report["validation"]["records"], 120);
        let run = ledger.all().remove(0);
        let path: Vec<RunStatus> = run.history.iter().map(|h| h.to).collect();
        assert_eq!(
            path,
            [
                RunStatus::Received,
                RunStatus::Validating,
                RunStatus::Validated
            ]
        );

        let again = svc
            .handle(object_event("incoming/support.jsonl", &etag))
            .await
            .unwrap();
        assert!(again.duplicate && again.valid);
        assert_eq!(again.run_id, Some(run_id));
        assert_eq!(ledger.all().len(), 1);
        assert_eq!(ledger.all()[0].history.len(), 3);
    }

    #[tokio::test]
    async fn an_invalid_line_rejects_the_run_with_its_line_number() {
        let store = Arc::new(InMemoryDatasetStore::new());
        let mut body = dataset(110);
        body.push_str("{not json\n");
        let etag = store.insert(BUCKET, "incoming/bad.jsonl", body, &[]);
        let (svc, ledger) = service(store.clone());
        let out = svc
            .handle(object_event("incoming/bad.jsonl", &etag))
            .await
            .unwrap();
        assert!(!out.valid);
        assert_eq!(out.status, Some(RunStatus::Rejected));
        assert_eq!(out.invalid_records, 1);
        let run = ledger.all().remove(0);
        let summary = run.validation.unwrap();
        assert!(
            summary.first_errors[0].starts_with("line 111:"),
            "{:?}",
            summary.first_errors
        );
        assert!(run.failure_reason.unwrap().contains("line 111"));
    }

    #[tokio::test]
    async fn bad_settings_and_bad_keys_are_rejections_with_the_reason() {
        let store = Arc::new(InMemoryDatasetStore::new());
        let e1 = store.insert(
            BUCKET,
            "incoming/meta.jsonl",
            dataset(120),
            &[("distillery-student", "meta.llama3-1-8b-instruct-v1:0:128k")],
        );
        let e2 = store.insert(BUCKET, "incoming/my data+v=1@x.jsonl", dataset(120), &[]);
        let e3 = store.insert(
            BUCKET,
            "incoming/typo.jsonl",
            dataset(120),
            &[("distillery-studnet", "x")],
        );
        let (svc, ledger) = service(store);
        let out = svc
            .handle(object_event("incoming/meta.jsonl", &e1))
            .await
            .unwrap();
        assert_eq!(out.status, Some(RunStatus::Rejected));
        let out = svc
            .handle(object_event("incoming/my data+v=1@x.jsonl", &e2))
            .await
            .unwrap();
        assert_eq!(out.status, Some(RunStatus::Rejected));
        let out = svc
            .handle(object_event("incoming/typo.jsonl", &e3))
            .await
            .unwrap();
        assert_eq!(out.status, Some(RunStatus::Rejected));
        let reasons: Vec<String> = ledger
            .all()
            .into_iter()
            .map(|r| r.failure_reason.unwrap())
            .collect();
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("amazon.nova-lite-v1:0:300k")),
            "{reasons:?}"
        );
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("space") && r.contains("'+'")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("distillery-studnet")),
            "{reasons:?}"
        );
    }

    #[tokio::test]
    async fn cli_overrides_win_and_schedule_runs_are_validated_directly() {
        let store = Arc::new(InMemoryDatasetStore::new());
        store.insert(
            BUCKET,
            "incoming/support-tickets.jsonl",
            dataset(120),
            &[("distillery-max-response-length", "500")],
        );
        let (svc, ledger) = service(store);
        let out = svc.handle(event("submit.json")).await.unwrap();
        assert!(out.valid, "{out:?}");
        let run = ledger
            .get(out.run_id.as_ref().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(run.settings.student, "amazon.nova-micro-v1:0:128k");
        assert_eq!(run.settings.max_response_length, 2000);
        assert_eq!(run.source, RunSource::Cli);

        let out = svc.handle(event("schedule.json")).await.unwrap();
        assert!(out.valid && out.report_uri.is_some(), "{out:?}");
        let again = svc.handle(event("schedule.json")).await.unwrap();
        assert!(again.duplicate);
        let run = ledger
            .get(out.run_id.as_ref().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            run.dataset,
            DatasetLocation::InvocationLogs { .. }
        ));
    }
}
