//! Use case behind `distillery submit`: start the pipeline for a dataset already in S3, with
//! per-run overrides, by starting a state machine execution with the `distillery.cli` payload
//! (docs/contracts.md) that the dataset-validator reads.
//!
//! Everything the validator would reject up front is checked here first, with the validator's own
//! configuration and domain rules, so a typo never costs an execution: the key must be in the upload
//! area (the validator ignores other keys) and be one Bedrock accepts, the object must exist, and the
//! overrides, laid over the object's `distillery-*` metadata as the validator does, must resolve
//! against the catalog, the limits and the serving guardrails.

use serde::Serialize;
use serde_json::Value;

use crate::app::validate_dataset::{run_for_object, ObjectVersion, ValidatorConfig};
use crate::domain::errors::{ErrorType, StepError};
use crate::domain::naming;
use crate::domain::run::{DatasetLocation, RunId};
use crate::domain::settings::{RunSettings, SettingsOverrides};
use crate::ports::{Clock, DatasetStore, ObjectInfo, PipelineStarter, RunLedger};

/// The `source` the validator recognises for a submission.
pub const SUBMIT_SOURCE: &str = "distillery.cli";

/// What to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitRequest {
    pub bucket: String,
    pub key: String,
    pub overrides: SettingsOverrides,
}

/// What `distillery runs retry` asks for: a new attempt of a run, optionally with changed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryRequest {
    pub run_id: RunId,
    pub overrides: SettingsOverrides,
}

/// A started pipeline run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    /// The run the validator will record (derived from the object version, the effective settings
    /// and the attempt: `RunId::for_dataset`).
    pub run_id: RunId,
    pub dataset: String,
    pub execution_name: String,
    pub execution_arn: String,
    /// The settings as checked here (the validator resolves them again, authoritatively).
    pub settings: RunSettings,
    /// The execution input that was sent.
    pub input: Value,
}

/// Splits `s3://bucket/key`, naming what is missing.
pub fn parse_s3_uri(uri: &str) -> Result<(String, String), StepError> {
    let rest = uri.strip_prefix("s3://").ok_or_else(|| {
        StepError::config(format!(
            "'{uri}' is not an s3:// URI (expected s3://bucket/key)"
        ))
    })?;
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
            Ok((bucket.to_string(), key.to_string()))
        }
        _ => Err(StepError::config(format!(
            "'{uri}' names no object (expected s3://bucket/key)"
        ))),
    }
}

/// The execution input for a submission: `{"source":"distillery.cli","bucket","key","overrides"}`,
/// with only the overrides that were given (each a string, as S3 metadata values are).
pub fn submit_payload(bucket: &str, key: &str, overrides: &SettingsOverrides) -> Value {
    serde_json::json!({
        "source": SUBMIT_SOURCE,
        "bucket": bucket,
        "key": key,
        "overrides": overrides,
    })
}

/// Checks a retry locally, then starts one execution for attempt n + 1 of the run (the payload
/// carries `retryOf`; the validator checks the old run again and links the new one to it). Only a
/// rejected, failed or stopped run of an S3 object that has not changed since can be retried.
pub async fn retry(
    ledger: &dyn RunLedger,
    store: &dyn DatasetStore,
    starter: &dyn PipelineStarter,
    config: &ValidatorConfig,
    clock: &dyn Clock,
    req: &RetryRequest,
) -> Result<Submission, StepError> {
    let old = ledger
        .get(&req.run_id)
        .await
        .map_err(|e| e.context(format!("reading run {}", req.run_id)))?
        .ok_or_else(|| StepError::not_found(format!("run {} is not in the ledger", req.run_id)))?;
    if !old.can_be_retried() {
        return Err(StepError::new(
            ErrorType::Conflict,
            format!(
                "run {} is {}: only a rejected, failed or stopped run can be retried{}",
                old.run_id,
                old.status,
                if old.status.is_terminal() {
                    ""
                } else {
                    " (this one is still in progress: follow it with distillery runs show)"
                }
            ),
        ));
    }
    let DatasetLocation::S3Object {
        bucket, key, etag, ..
    } = &old.dataset
    else {
        return Err(StepError::config(format!(
            "run {} trained on invocation logs: the next scheduled retraining is its retry",
            old.run_id
        )));
    };
    let submit_req = SubmitRequest {
        bucket: bucket.clone(),
        key: key.clone(),
        overrides: req.overrides.clone(),
    };
    let uri = format!("s3://{bucket}/{key}");
    let info = check_and_head(store, config, &submit_req).await?;
    if info.etag.trim_matches('"') != etag.trim_matches('"') {
        return Err(StepError::config(format!(
            "{uri} changed since run {} (ETag {} then, {} now): its upload started its own run; \
             retry that one if it fails",
            old.run_id,
            etag.trim_matches('"'),
            info.etag.trim_matches('"')
        )));
    }
    let mut input = submit_payload(bucket, key, &req.overrides);
    input["retryOf"] = Value::String(old.run_id.to_string());
    start(
        starter,
        config,
        clock,
        &submit_req,
        &info,
        old.attempt + 1,
        input,
    )
    .await
}

/// The checks before HEAD (upload area, a key Bedrock accepts), then HEAD.
async fn check_and_head(
    store: &dyn DatasetStore,
    config: &ValidatorConfig,
    req: &SubmitRequest,
) -> Result<ObjectInfo, StepError> {
    let (bucket, key) = (req.bucket.as_str(), req.key.as_str());
    let uri = format!("s3://{bucket}/{key}");
    if !(key.starts_with(&config.upload_prefix) && key.ends_with(&config.upload_suffix)) {
        return Err(StepError::config(format!(
            "{uri} is outside the upload area (keys under '{}' ending in '{}', UPLOAD_PREFIX/UPLOAD_SUFFIX): \
             the pipeline would ignore it; copy it under the prefix",
            config.upload_prefix, config.upload_suffix
        )));
    }
    naming::check_dataset_object(bucket, key)?;
    store
        .head(bucket, key, None)
        .await
        .map_err(|e| e.context(format!("reading {uri}")))
}

/// Resolves the settings as the validator will (refusing bad ones) and starts the execution.
async fn start(
    starter: &dyn PipelineStarter,
    config: &ValidatorConfig,
    clock: &dyn Clock,
    req: &SubmitRequest,
    info: &ObjectInfo,
    attempt: u32,
    input: Value,
) -> Result<Submission, StepError> {
    let (bucket, key) = (req.bucket.as_str(), req.key.as_str());
    let uri = format!("s3://{bucket}/{key}");
    let object = ObjectVersion {
        bucket,
        key,
        version_id: info.version_id.as_deref(),
        etag: &info.etag,
        metadata: &info.metadata,
    };
    let (run_id, settings) = run_for_object(config, &object, &req.overrides, attempt);
    // Keeps the type (ConfigInvalid or GuardrailViolation); says which dataset it was about.
    let settings = settings.map_err(|e| e.context(format!("settings for {uri}")))?;
    let execution_name = naming::execution_name(&run_id, clock.now());
    let execution_arn = starter
        .start(&execution_name, &input)
        .await
        .map_err(|e| e.context("starting the pipeline"))?;
    tracing::info!(run_id = %run_id, execution_arn, "pipeline started");
    Ok(Submission {
        run_id,
        dataset: uri,
        execution_name,
        execution_arn,
        settings,
        input,
    })
}

/// Checks the submission locally, then starts one execution. Errors are `ConfigInvalid` (or
/// `GuardrailViolation`) for anything about the request, in which case nothing was started, or the
/// ports' typed errors.
pub async fn submit(
    store: &dyn DatasetStore,
    starter: &dyn PipelineStarter,
    config: &ValidatorConfig,
    clock: &dyn Clock,
    req: &SubmitRequest,
) -> Result<Submission, StepError> {
    let info = check_and_head(store, config, req).await?;
    let input = submit_payload(&req.bucket, &req.key, &req.overrides);
    start(starter, config, clock, req, &info, 1, input).await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::app::validate_dataset::ValidateInput;
    use crate::ports::PortError;
    use crate::testing::fakes::FixedClock;
    use crate::testing::memory::InMemoryDatasetStore;

    /// Records every start; the ARN names the execution.
    #[derive(Default)]
    struct RecordingStarter {
        started: Mutex<Vec<(String, Value)>>,
    }

    #[async_trait]
    impl PipelineStarter for RecordingStarter {
        async fn start(&self, name: &str, input: &Value) -> Result<String, PortError> {
            self.started
                .lock()
                .unwrap()
                .push((name.to_string(), input.clone()));
            Ok(format!(
                "arn:aws:states:us-east-1:123456789012:execution:sm:{name}"
            ))
        }
    }

    fn config() -> ValidatorConfig {
        let env: HashMap<&str, &str> = HashMap::new();
        ValidatorConfig::from_lookup(|k| {
            env.get(k)
                .map(|v| v.to_string())
                .or_else(|| crate::testing::permissive_stack(k))
        })
        .unwrap()
    }

    fn request(key: &str, overrides: SettingsOverrides) -> SubmitRequest {
        SubmitRequest {
            bucket: "datasets".into(),
            key: key.into(),
            overrides,
        }
    }

    async fn run(
        store: &InMemoryDatasetStore,
        starter: &RecordingStarter,
        req: &SubmitRequest,
    ) -> Result<Submission, StepError> {
        let clock = FixedClock::at(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
        submit(store, starter, &config(), &clock, req).await
    }

    #[test]
    fn s3_uris_split_or_say_what_is_missing() {
        assert_eq!(
            parse_s3_uri("s3://b/incoming/a.jsonl").unwrap(),
            ("b".to_string(), "incoming/a.jsonl".to_string())
        );
        for bad in ["b/k", "s3://b", "s3://b/", "s3:///k"] {
            let e = parse_s3_uri(bad).unwrap_err();
            assert_eq!(e.error_type, ErrorType::ConfigInvalid, "{bad}");
            assert!(e.message.contains("s3://bucket/key"), "{}", e.message);
        }
    }

    fn sub_overrides() -> SettingsOverrides {
        SettingsOverrides {
            student: Some("amazon.nova-micro-v1:0:128k".into()),
            max_response_length: Some("2000".into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn starts_one_execution_with_the_payload_the_validator_reads() {
        let store = InMemoryDatasetStore::new();
        let etag = store.insert(
            "datasets",
            "incoming/support.jsonl",
            "{}\n",
            &[("distillery-teacher", "amazon.nova-pro-v1:0")],
        );
        let starter = RecordingStarter::default();
        let overrides = sub_overrides();
        let sub = run(
            &store,
            &starter,
            &request("incoming/support.jsonl", overrides),
        )
        .await
        .unwrap();
        let info = store
            .head("datasets", "incoming/support.jsonl", None)
            .await
            .unwrap();
        assert_eq!(info.etag.trim_matches('"'), etag.trim_matches('"'));
        let (run_id, _) = run_for_object(
            &config(),
            &ObjectVersion {
                bucket: "datasets",
                key: "incoming/support.jsonl",
                version_id: info.version_id.as_deref(),
                etag: &info.etag,
                metadata: &info.metadata,
            },
            &sub_overrides(),
            1,
        );
        assert_eq!(sub.run_id, run_id);
        assert_eq!(
            sub.execution_name,
            format!("{}-20260301T120000000Z", run_id.as_str())
        );
        assert_eq!(sub.settings.student, "amazon.nova-micro-v1:0:128k");
        assert_eq!(sub.settings.max_response_length, 2000);
        let started = starter.started.lock().unwrap().clone();
        assert_eq!(started.len(), 1);
        assert_eq!(
            started[0].1,
            serde_json::json!({
                "source": "distillery.cli",
                "bucket": "datasets",
                "key": "incoming/support.jsonl",
                "overrides": {"student": "amazon.nova-micro-v1:0:128k", "maxResponseLength": "2000"}
            })
        );
        // The validator's own parser accepts it and reads the same overrides.
        match ValidateInput::parse(started[0].1.clone()).unwrap() {
            ValidateInput::Submit(p) => {
                assert_eq!(p.bucket, "datasets");
                assert_eq!(p.key, "incoming/support.jsonl");
                assert_eq!(
                    p.overrides.student.as_deref(),
                    Some("amazon.nova-micro-v1:0:128k")
                );
                assert_eq!(p.overrides.max_response_length.as_deref(), Some("2000"));
                assert_eq!(p.overrides.teacher, None);
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_bad_request_starts_nothing_and_names_the_problem() {
        let store = InMemoryDatasetStore::new();
        store.insert("datasets", "incoming/a.jsonl", "{}\n", &[]);
        store.insert("datasets", "incoming/odd key.jsonl", "{}\n", &[]);
        store.insert(
            "datasets",
            "incoming/typo.jsonl",
            "{}\n",
            &[("distillery-studnet", "x")],
        );
        let starter = RecordingStarter::default();
        let cases = [
            (
                request(
                    "incoming/a.jsonl",
                    SettingsOverrides {
                        student: Some("meta.llama3-1-8b-instruct-v1:0:128k".into()),
                        ..Default::default()
                    },
                ),
                "student 'meta.llama3-1-8b-instruct-v1:0:128k' cannot learn from teacher",
            ),
            (
                request(
                    "incoming/a.jsonl",
                    SettingsOverrides {
                        model_units: Some("many".into()),
                        ..Default::default()
                    },
                ),
                "modelUnits",
            ),
            (
                request(
                    "incoming/a.jsonl",
                    SettingsOverrides {
                        serving: Some("provisioned".into()),
                        model_units: Some("1000".into()),
                        ..Default::default()
                    },
                ),
                "modelUnits 1000 exceeds the stack's maximum",
            ),
            (
                request("other/a.jsonl", SettingsOverrides::default()),
                "outside the upload area",
            ),
            (
                request("incoming/odd key.jsonl", SettingsOverrides::default()),
                "space",
            ),
            (
                request("incoming/typo.jsonl", SettingsOverrides::default()),
                "x-amz-meta-distillery-studnet",
            ),
            (
                request("incoming/missing.jsonl", SettingsOverrides::default()),
                "reading s3://datasets/incoming/missing.jsonl",
            ),
        ];
        for (req, expected) in cases {
            let e = run(&store, &starter, &req).await.unwrap_err();
            assert!(
                e.message.to_lowercase().contains(&expected.to_lowercase()),
                "'{expected}' in '{}'",
                e.message
            );
        }
        assert!(starter.started.lock().unwrap().is_empty());
    }
}
