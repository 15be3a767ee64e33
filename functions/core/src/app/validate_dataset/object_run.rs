//! How an S3 object becomes a run: its identity (object version + effective settings + attempt),
//! who owns it (the execution that created it), and what happens when a run already exists: the
//! owning execution's retried step resumes a run a crash left in `received`/`validating`; any
//! other execution for the same run ends as a duplicate.

use std::collections::BTreeMap;

use tracing::Instrument;

use super::snapshot::changed_reason;
use super::{DatasetValidatorService, ValidateDatasetOutput, ValidatorConfig};
use crate::domain::cost;
use crate::domain::errors::{ErrorType, StepError};
use crate::domain::evaluation::setting::provisioned_without_on_demand;
use crate::domain::evaluation::{
    resolve_gate, GateInputs, GateSetting, GATE_METADATA_KEY, MIN_SCORE_METADATA_KEY,
};
use crate::domain::run::{
    DatasetLocation, QueuePriority, Run, RunId, RunIdentity, RunSource, RunStatus, RunUpdate,
    PRIORITY_METADATA_KEY,
};
use crate::domain::settings::{
    settings_fingerprint, OverrideSources, RunSettings, ServingMode, SettingsOverrides,
};
use crate::domain::snapshot::ObjectPin;
use crate::ports::{CreateOutcome, ObjectInfo, PortError};

/// The object version an upload event names.
#[derive(Debug, Clone, Default)]
pub(super) struct EventVersion {
    pub(super) etag: Option<String>,
    pub(super) version_id: Option<String>,
    pub(super) size: Option<u64>,
}

/// One request to validate an S3 object (an upload event or a submission).
pub(super) struct ObjectRequest<'a> {
    pub(super) source: RunSource,
    pub(super) bucket: &'a str,
    pub(super) key: &'a str,
    pub(super) event: Option<EventVersion>,
    pub(super) cli: &'a SettingsOverrides,
    pub(super) retry_of: Option<&'a RunId>,
    pub(super) owner: Option<&'a str>,
}

/// What a new run is, before it is recorded.
pub(super) struct NewRun<'a> {
    pub(super) source: RunSource,
    pub(super) run_id: RunId,
    pub(super) owner: Option<&'a str>,
    pub(super) retry_of: Option<&'a RunId>,
    pub(super) attempt: u32,
}

/// A run this execution created and a crash left before its verdict: validated again.
pub(super) fn resumable(run: &Run, owner: Option<&str>) -> bool {
    run.is_owned_by(owner) && matches!(run.status, RunStatus::Received | RunStatus::Validating)
}

/// One version of an S3 object, with the metadata its settings come from.
#[derive(Debug, Clone, Copy)]
pub struct ObjectVersion<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub version_id: Option<&'a str>,
    pub etag: &'a str,
    pub metadata: &'a BTreeMap<String, String>,
}

/// The run an object version gets with these flags, and its settings as resolved (stack defaults,
/// then the object's `distillery-*` metadata, then the flags) and checked, Region included. The
/// validator and `distillery submit` / `runs retry` both call it, so they agree on the run id.
pub fn run_for_object(
    config: &ValidatorConfig,
    object: &ObjectVersion<'_>,
    cli: &SettingsOverrides,
    attempt: u32,
) -> (RunId, Result<RunSettings, StepError>) {
    let settings = resolve_settings(config, object.metadata, cli);
    let mut fingerprint =
        settings_fingerprint(settings.as_ref().map_err(|_| ()), object.metadata, cli);
    // A budget set in the metadata is part of what decides the run (raising a too-low one makes
    // a new run); appended only when present, so every other run keeps its id.
    if let (Ok(_), Some(b)) = (&settings, metadata_budget(object.metadata)) {
        fingerprint.push_str(&format!("|budget:{}", b.trim()));
    }
    // The same for a TTL set in the metadata (how long paid throughput is kept decides the run).
    if let (Ok(_), Some(t)) = (&settings, metadata_pt_ttl(object.metadata)) {
        fingerprint.push_str(&format!("|pt-ttl:{}", t.trim()));
    }
    // And for the quality gate: appended only when it is on (and its threshold only when the
    // metadata sets one), so runs without a gate keep the ids they had before it existed.
    if let (Ok(_), Ok(Some(_))) = (&settings, run_gate(config, object.metadata)) {
        fingerprint.push_str("|quality-gate:on");
        if let Some(m) = metadata_value(object.metadata, MIN_SCORE_METADATA_KEY) {
            fingerprint.push_str(&format!("|gate-min:{}", m.trim()));
        }
    }
    let run_id = RunId::for_dataset(&RunIdentity {
        bucket: object.bucket,
        key: object.key,
        version: RunIdentity::object_version(object.version_id, object.etag),
        settings_fingerprint: &fingerprint,
        attempt,
    });
    (run_id, settings)
}

fn resolve_settings(
    config: &ValidatorConfig,
    metadata: &BTreeMap<String, String>,
    cli: &SettingsOverrides,
) -> Result<RunSettings, StepError> {
    let from_metadata = SettingsOverrides::from_metadata(metadata)?;
    // Whoever can upload may not raise what the run costs unless the stack opens that setting
    // (`ALLOW_OVERRIDES`); refused before anything else, so before a byte of the dataset is read.
    config
        .allowed_overrides
        .check_metadata(&from_metadata, cli)?;
    // CLI flags win over object metadata; an error names the one to fix.
    let sources = OverrideSources {
        metadata: &from_metadata,
        cli,
    };
    let mut settings = RunSettings::resolve_from(
        &config.defaults,
        &sources,
        &config.catalog,
        &config.limits,
        &config.policy,
    )?;
    if let Some(region) = &config.region {
        config
            .catalog
            .check_region(&settings.teacher, &settings.student, region)
            .map_err(StepError::config)?;
    }
    settings.settle_serving(&config.catalog, &config.serving_region(&settings), &sources)?;
    // A budget override the stack does not allow is a settings problem: rejected before reading.
    run_budget(config, metadata)?;
    // So is a TTL longer than the stack's.
    run_pt_ttl(config, metadata)?;
    // And a queue priority that is not one, or `high` where the stack does not allow it.
    run_priority(config, metadata)?;
    // And a gate switched off or a threshold lowered by metadata, or a gate that cannot evaluate
    // the student before throughput is bought.
    if run_gate(config, metadata)?.is_some()
        && settings.serving == ServingMode::Provisioned
        && !config
            .catalog
            .serves_on_demand(&settings.student, &config.serving_region(&settings))
    {
        return Err(provisioned_without_on_demand(
            &settings.student,
            &config.serving_region(&settings),
        ));
    }
    Ok(settings)
}

/// The object's metadata value for `key` (keys are case-insensitive).
fn metadata_value<'m>(metadata: &'m BTreeMap<String, String>, key: &str) -> Option<&'m str> {
    metadata
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// The run's quality gate (`None`: off): the stack's `QUALITY_GATE` and threshold, made stricter
/// by the object's metadata, never looser.
pub(super) fn run_gate(
    config: &ValidatorConfig,
    metadata: &BTreeMap<String, String>,
) -> Result<Option<GateSetting>, StepError> {
    resolve_gate(
        &GateInputs {
            stack_on: config.quality_gate,
            stack_min_score: config.quality_gate_min_score,
            metadata_switch: metadata_value(metadata, GATE_METADATA_KEY),
            metadata_min_score: metadata_value(metadata, MIN_SCORE_METADATA_KEY),
        },
        &config.limits,
    )
}

/// The object's `distillery-pt-ttl-hours` metadata (keys are case-insensitive).
fn metadata_pt_ttl(metadata: &BTreeMap<String, String>) -> Option<&str> {
    metadata
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(cost::PT_TTL_METADATA_KEY))
        .map(|(_, v)| v.as_str())
}

/// The run's Provisioned Throughput TTL in hours: the stack's, shortened by the object's metadata.
pub(super) fn run_pt_ttl(
    config: &ValidatorConfig,
    metadata: &BTreeMap<String, String>,
) -> Result<f64, StepError> {
    cost::resolve_pt_ttl(config.pt_ttl_hours, metadata_pt_ttl(metadata)).map(|(h, _)| h)
}

/// The run's launch-queue priority from the object's metadata (normal when absent).
pub(super) fn run_priority(
    config: &ValidatorConfig,
    metadata: &BTreeMap<String, String>,
) -> Result<QueuePriority, StepError> {
    QueuePriority::resolve(
        metadata_value(metadata, PRIORITY_METADATA_KEY),
        config.allowed_overrides.allows_all(),
    )
}

/// The object's `distillery-max-run-cost-usd` metadata (keys are case-insensitive).
pub(super) fn metadata_budget(metadata: &BTreeMap<String, String>) -> Option<&str> {
    metadata
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(cost::MAX_RUN_COST_METADATA_KEY))
        .map(|(_, v)| v.as_str())
}

/// The run's budget and where it came from: the stack's, lowered by the object's metadata.
pub(super) fn run_budget(
    config: &ValidatorConfig,
    metadata: &BTreeMap<String, String>,
) -> Result<Option<(f64, String)>, StepError> {
    cost::resolve_budget(config.max_run_cost_usd, metadata_budget(metadata))
}

impl DatasetValidatorService {
    pub(super) async fn handle_object(
        &self,
        req: ObjectRequest<'_>,
    ) -> Result<ValidateDatasetOutput, StepError> {
        let (bucket, key) = (req.bucket, req.key);
        if !self.in_upload_area(key) {
            tracing::info!(
                bucket,
                key,
                "key is outside the upload prefix/suffix; ignored"
            );
            return Ok(ValidateDatasetOutput::ignored());
        }
        // HEAD (the metadata holds the run's settings) of exactly the version the event announced.
        let event = req.event.clone().unwrap_or_default();
        let pin = ObjectPin::from_event(event.version_id.as_deref(), event.etag.as_deref());
        let info = match self.store.head(bucket, key, pin.as_ref()).await {
            Ok(info) => info,
            // Deleted, or overwritten, between the upload event and now: a rejected run with the
            // reason, so the upload does not end with an error that names no run. (The newer upload
            // has its own event and its own run.)
            Err(PortError::NotFound(_)) if req.event.is_some() => {
                let reason = format!(
                    "s3://{bucket}/{key} no longer exists (deleted after the upload event); nothing was read or launched"
                );
                return self.reject_unreadable_object(&req, reason).await;
            }
            Err(PortError::ObjectChanged(detail)) if req.event.is_some() => {
                let reason = match &pin {
                    Some(pin) => changed_reason(bucket, key, pin, &detail),
                    None => {
                        format!("s3://{bucket}/{key} changed after the upload event ({detail})")
                    }
                };
                return self.reject_unreadable_object(&req, reason).await;
            }
            Err(e) => return Err(e.context(format!("reading s3://{bucket}/{key}"))),
        };
        let etag = event.etag.unwrap_or_else(|| info.etag.clone());
        let version_id = event.version_id.or_else(|| info.version_id.clone());
        let attempt = match req.retry_of {
            Some(old) => self.next_attempt(old, bucket, key).await?,
            None => 1,
        };
        let object = ObjectVersion {
            bucket,
            key,
            version_id: version_id.as_deref(),
            etag: &etag,
            metadata: &info.metadata,
        };
        let (run_id, settings) = run_for_object(&self.config, &object, req.cli, attempt);
        let span = tracing::info_span!("run", run_id = %run_id);
        let new_run = NewRun {
            source: req.source,
            run_id,
            owner: req.owner,
            retry_of: req.retry_of,
            attempt,
        };
        self.validate_object(new_run, info, etag, settings)
            .instrument(span)
            .await
    }

    /// A retry is attempt n + 1 of a rejected, failed or stopped run of the same object.
    pub(super) async fn next_attempt(
        &self,
        old: &RunId,
        bucket: &str,
        key: &str,
    ) -> Result<u32, StepError> {
        let run = self
            .ledger
            .get(old)
            .await
            .map_err(|e| e.context(format!("reading run {old} to retry it")))?
            .ok_or_else(|| {
                StepError::not_found(format!("run {old} (to retry) is not in the ledger"))
            })?;
        if !run.can_be_retried() {
            return Err(StepError::new(
                ErrorType::Conflict,
                format!(
                    "run {old} is {}: only a rejected, failed or stopped run can be retried",
                    run.status
                ),
            ));
        }
        if run.dataset.s3_uri() != format!("s3://{bucket}/{key}") {
            return Err(StepError::invalid_input(format!(
                "run {old} trained on {}, not s3://{bucket}/{key}",
                run.dataset.s3_uri()
            )));
        }
        Ok(run.attempt + 1)
    }

    /// The version an upload event names can no longer be read (deleted, or overwritten): recorded
    /// as a rejected run with `reason` and a report. Its identity has no settings (there is no
    /// metadata to read them from), so a redelivered event finds the same run.
    pub(super) async fn reject_unreadable_object(
        &self,
        req: &ObjectRequest<'_>,
        reason: String,
    ) -> Result<ValidateDatasetOutput, StepError> {
        let event = req.event.clone().unwrap_or_default();
        let etag = event.etag.clone().unwrap_or_default();
        let version_id = event
            .version_id
            .clone()
            .filter(|v| !v.is_empty() && v != "null");
        let run_id = RunId::for_dataset(&RunIdentity {
            bucket: req.bucket,
            key: req.key,
            version: RunIdentity::object_version(version_id.as_deref(), &etag),
            settings_fingerprint: "object-unreadable",
            attempt: 1,
        });
        let dataset = DatasetLocation::S3Object {
            bucket: req.bucket.to_string(),
            key: req.key.to_string(),
            etag: etag.trim_matches('"').to_string(),
            version_id,
            size: event.size.unwrap_or(0),
        };
        let mut run = Run::new(
            run_id.clone(),
            req.source,
            dataset,
            self.config.recorded_defaults(),
            self.clock.now(),
        );
        run.owner_execution = req.owner.map(str::to_string);
        let run = match self.create_or_find(run).await? {
            Ok(run) => run,
            Err(existing) if !resumable(&existing, req.owner) => {
                return Ok(ValidateDatasetOutput::for_run(
                    &existing,
                    !existing.is_owned_by(req.owner),
                ))
            }
            Err(existing) => existing,
        };
        self.to_validating(&run).await?;
        tracing::info!(run_id = %run.run_id, %reason, "the announced version can't be read; rejected");
        self.reject_unread(&run, None, reason).await
    }

    /// Creates the run, or reports the existing one as a duplicate.
    pub(super) async fn create_or_find(&self, run: Run) -> Result<Result<Run, Run>, StepError> {
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

    /// `received → validating`; a run already `validating` (a crashed attempt) stays so.
    pub(super) async fn to_validating(&self, run: &Run) -> Result<(), StepError> {
        if run.status == RunStatus::Validating {
            return Ok(());
        }
        self.ledger
            .update(
                &run.run_id,
                &[RunStatus::Received],
                &RunUpdate::to(RunStatus::Validating),
            )
            .await
            .map_err(|e| e.context("moving the run to validating"))?;
        Ok(())
    }

    pub(super) async fn validate_object(
        &self,
        new_run: NewRun<'_>,
        info: ObjectInfo,
        etag: String,
        settings: Result<RunSettings, StepError>,
    ) -> Result<ValidateDatasetOutput, StepError> {
        let run_id = new_run.run_id.clone();
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
            .unwrap_or_else(|_| self.config.recorded_defaults());
        let mut run = Run::new(
            run_id.clone(),
            new_run.source,
            dataset.clone(),
            recorded,
            self.clock.now(),
        );
        run.owner_execution = new_run.owner.map(str::to_string);
        run.retry_of = new_run.retry_of.cloned();
        run.attempt = new_run.attempt;
        // A priority the stack refuses already failed the settings.
        run.priority = run_priority(&self.config, &info.metadata).unwrap_or_default();
        // Provisioned runs carry their TTL from the start, so the provisioner needs no stack
        // setting of its own (a TTL the stack refuses already failed the settings).
        if matches!(&settings, Ok(s) if s.serving == ServingMode::Provisioned) {
            run.pt_ttl_hours =
                Some(run_pt_ttl(&self.config, &info.metadata).unwrap_or(self.config.pt_ttl_hours));
        }
        let run = match self.create_or_find(run).await? {
            Ok(run) => run,
            Err(existing) if resumable(&existing, new_run.owner) => {
                tracing::info!(status = %existing.status, "resuming the run this execution created");
                existing
            }
            Err(existing) => {
                // Another execution's run (a duplicate), or one this execution already finished
                // validating (a retried step after the verdict): report it as it stands.
                let duplicate = !existing.is_owned_by(new_run.owner);
                return Ok(ValidateDatasetOutput::for_run(&existing, duplicate));
            }
        };
        self.to_validating(&run).await?;

        let result = self.check_and_report(&run, &info, settings, None).await;
        self.settle_unfinished(&run_id, new_run.owner, result).await
    }

    /// A validation that ended in an error: a retryable one (throttling, a transient failure) of a
    /// run an execution owns is returned as it is, since that execution's ValidateDataset Retry
    /// resumes the run; any other is recorded on the run as `failed`, so it does not sit in
    /// `validating`, and returned typed for the notifier.
    pub(super) async fn settle_unfinished(
        &self,
        run_id: &RunId,
        owner: Option<&str>,
        result: Result<ValidateDatasetOutput, StepError>,
    ) -> Result<ValidateDatasetOutput, StepError> {
        match result {
            Ok(out) => Ok(out),
            // The execution that owns the run retries these (the ValidateDataset Retry) and resumes
            // the run, so it stays `validating` rather than being failed here. (If every retry
            // fails, the reconciler fails the run once it has been quiet too long.)
            Err(e)
                if matches!(e.error_type, ErrorType::Transient | ErrorType::Throttled)
                    && owner.is_some() =>
            {
                Err(e)
            }
            Err(e) => {
                // Nobody will resume the run: record the failure so it does not sit in
                // `validating`, then surface the error for the notifier.
                let reason = format!("validation could not finish: {}", e.message);
                let mut update = RunUpdate::to(RunStatus::Failed).with_detail(reason.clone());
                update.failure_reason = Some(reason);
                if let Err(le) = self
                    .ledger
                    .update(run_id, &[RunStatus::Validating], &update)
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
}
