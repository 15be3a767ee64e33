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

use crate::app::validate_dataset::ValidatorConfig;
use crate::domain::errors::StepError;
use crate::domain::naming;
use crate::domain::run::RunId;
use crate::domain::settings::{RunSettings, SettingsOverrides};
use crate::ports::{Clock, DatasetStore, PipelineStarter};

/// The `source` the validator recognises for a submission.
pub const SUBMIT_SOURCE: &str = "distillery.cli";

/// What to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitRequest {
    pub bucket: String,
    pub key: String,
    pub overrides: SettingsOverrides,
}

/// A started pipeline run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    /// The run the validator will record (derived from bucket, key and the object's ETag).
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

/// `winner`'s fields where set, `base`'s otherwise (submit flags win over object metadata).
fn overlay(base: SettingsOverrides, winner: &SettingsOverrides) -> SettingsOverrides {
    let pick = |w: &Option<String>, b: Option<String>| w.clone().or(b);
    SettingsOverrides {
        teacher: pick(&winner.teacher, base.teacher),
        student: pick(&winner.student, base.student),
        max_response_length: pick(&winner.max_response_length, base.max_response_length),
        serving: pick(&winner.serving, base.serving),
        model_units: pick(&winner.model_units, base.model_units),
        commitment: pick(&winner.commitment, base.commitment),
    }
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
    let info = store
        .head(bucket, key, None)
        .await
        .map_err(|e| e.context(format!("reading {uri}")))?;
    let metadata = SettingsOverrides::from_metadata(&info.metadata).map_err(|e| e.context(&uri))?;
    let settings = RunSettings::resolve(
        &config.defaults,
        &overlay(metadata, &req.overrides),
        &config.catalog,
        &config.limits,
        &config.policy,
    )
    // Keeps the type (ConfigInvalid or GuardrailViolation); says which dataset it was about.
    .map_err(|e| e.context(format!("settings for {uri}")))?;
    let run_id = RunId::for_object(bucket, key, &info.etag);
    let execution_name = naming::execution_name(&run_id, clock.now());
    let input = submit_payload(bucket, key, &req.overrides);
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::app::validate_dataset::ValidateInput;
    use crate::domain::errors::ErrorType;
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
        ValidatorConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap()
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
        let overrides = SettingsOverrides {
            student: Some("amazon.nova-micro-v1:0:128k".into()),
            max_response_length: Some("2000".into()),
            ..Default::default()
        };
        let sub = run(
            &store,
            &starter,
            &request("incoming/support.jsonl", overrides),
        )
        .await
        .unwrap();
        let run_id = RunId::for_object("datasets", "incoming/support.jsonl", &etag);
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
