//! Use case behind the `job-launcher` Lambda: start the Bedrock distillation job for a validated run,
//! exactly once.
//!
//! Order matters for crash safety: the run moves `validated → launching` (recording the job and model
//! names) BEFORE Bedrock is called, with a `clientRequestToken` derived from the run id. A crash or
//! timeout after Bedrock accepted the job leaves the run in `launching`; the retry calls Bedrock again
//! with the same token and names, gets the same job back, and moves the run to `training` with the ARN.
//! A run already `training` (or later) with a job ARN returns that ARN without calling Bedrock.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::config::{process_var, Env};
use crate::domain::errors::{ErrorType, StepError};
use crate::domain::naming;
use crate::domain::run::{DatasetLocation, Run, RunId, RunStatus, RunUpdate};
use crate::domain::tags;
use crate::ports::{
    Clock, CustomizationService, DistillationJobRequest, PortError, RunLedger, TrainingData,
};

/// The purpose part of the job's `clientRequestToken`.
pub const CREATE_JOB_TOKEN_PURPOSE: &str = "create-job";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LauncherConfig {
    /// The service role Bedrock assumes (`BEDROCK_ROLE_ARN`).
    pub role_arn: String,
    /// Job output bucket (`OUTPUT_BUCKET`); the dataset's bucket when unset.
    pub output_bucket: Option<String>,
    /// Job output prefix (`OUTPUT_PREFIX`, default `output/`); the run id is appended.
    pub output_prefix: String,
}

impl LauncherConfig {
    /// Reads the process environment (see [`crate::config`] for what "unset" means).
    pub fn from_env() -> Result<Self, StepError> {
        Self::from_lookup(process_var)
    }

    /// Reads the configuration through `get` (the environment in Lambda, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, StepError> {
        let env = Env::new(get);
        let role_arn = env.required("BEDROCK_ROLE_ARN")?;
        let mut output_prefix = env.string_or("OUTPUT_PREFIX", "output/");
        if !output_prefix.ends_with('/') {
            output_prefix.push('/');
        }
        Ok(LauncherConfig {
            role_arn,
            output_bucket: env.optional_string("OUTPUT_BUCKET"),
            output_prefix,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchJobInput {
    pub run_id: RunId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchJobOutput {
    pub run_id: RunId,
    pub job_arn: String,
    pub job_name: String,
    pub custom_model_name: String,
}

pub struct JobLauncherService {
    pub ledger: Arc<dyn RunLedger>,
    pub bedrock: Arc<dyn CustomizationService>,
    pub clock: Arc<dyn Clock>,
    pub config: LauncherConfig,
}

/// The bucket of an `s3://bucket/...` URI.
fn bucket_of(uri: &str) -> Option<&str> {
    uri.strip_prefix("s3://")?
        .split('/')
        .next()
        .filter(|b| !b.is_empty())
}

fn output_of(run: &Run) -> Option<LaunchJobOutput> {
    Some(LaunchJobOutput {
        run_id: run.run_id.clone(),
        job_arn: run.job_arn.clone()?,
        job_name: run.job_name.clone().unwrap_or_default(),
        custom_model_name: run.custom_model_name.clone().unwrap_or_default(),
    })
}

impl JobLauncherService {
    pub async fn handle(&self, input: LaunchJobInput) -> Result<LaunchJobOutput, StepError> {
        let span = tracing::info_span!("run", run_id = %input.run_id);
        self.launch(&input.run_id).instrument(span).await
    }

    /// Builds the request for a run. Pure apart from the config: the same run always gives the same
    /// request, which is what makes the retry safe.
    pub fn build_request(&self, run: &Run) -> Result<DistillationJobRequest, StepError> {
        let dataset_name = run.dataset.display_name();
        let job_name = run
            .job_name
            .clone()
            .unwrap_or_else(|| naming::job_name(&run.run_id, &dataset_name));
        let custom_model_name = run
            .custom_model_name
            .clone()
            .unwrap_or_else(|| naming::custom_model_name(&run.run_id, &dataset_name));
        let (training_data, dataset_bucket) = match &run.dataset {
            DatasetLocation::S3Object { bucket, key, .. } => {
                let s3_uri = naming::check_dataset_object(bucket, key)?;
                (TrainingData::S3 { s3_uri }, bucket.clone())
            }
            DatasetLocation::InvocationLogs {
                s3_uri,
                request_metadata_filters,
                use_prompt_response,
            } => {
                naming::check_s3_uri(s3_uri)?;
                let bucket = bucket_of(s3_uri).unwrap_or_default().to_string();
                (
                    TrainingData::InvocationLogs {
                        s3_uri: s3_uri.clone(),
                        use_prompt_response: *use_prompt_response,
                        request_metadata_filters: request_metadata_filters.clone(),
                    },
                    bucket,
                )
            }
        };
        let output_bucket = self.config.output_bucket.clone().unwrap_or(dataset_bucket);
        let output_s3_uri = format!(
            "s3://{output_bucket}/{}{}/",
            self.config.output_prefix, run.run_id
        );
        naming::check_s3_uri(&output_s3_uri)?;
        let source = serde_json::to_value(run.source)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let tags = BTreeMap::from([
            (tags::RUN_ID_TAG.to_string(), run.run_id.to_string()),
            (
                tags::MANAGED_BY_TAG.to_string(),
                tags::MANAGED_BY_VALUE.to_string(),
            ),
            (
                "distillery:dataset".to_string(),
                naming::slug(&dataset_name, 200),
            ),
            ("distillery:source".to_string(), source),
            (
                "distillery:student".to_string(),
                run.settings.student.clone(),
            ),
        ]);
        Ok(DistillationJobRequest {
            job_name,
            custom_model_name,
            role_arn: self.config.role_arn.clone(),
            student: run.settings.student.clone(),
            teacher: run.settings.teacher.clone(),
            max_response_length: run.settings.max_response_length,
            training_data,
            output_s3_uri,
            client_request_token: naming::client_request_token(
                &run.run_id,
                CREATE_JOB_TOKEN_PURPOSE,
            ),
            job_tags: tags.clone(),
            custom_model_tags: tags,
        })
    }

    async fn launch(&self, run_id: &RunId) -> Result<LaunchJobOutput, StepError> {
        let run = self
            .ledger
            .get(run_id)
            .await
            .map_err(|e| e.context("reading the run"))?
            .ok_or_else(|| StepError::not_found(format!("run {run_id} does not exist")))?;

        if let Some(out) = output_of(&run) {
            tracing::info!(job_arn = %out.job_arn, status = %run.status, "job already launched");
            return Ok(out);
        }
        if !matches!(run.status, RunStatus::Validated | RunStatus::Launching) {
            return Err(StepError::new(
                ErrorType::Conflict,
                format!(
                    "run {run_id} is {}; only a validated run can be launched",
                    run.status
                ),
            ));
        }
        let req = self.build_request(&run)?;
        match run.status {
            RunStatus::Validated => {
                let mut update = RunUpdate::to(RunStatus::Launching)
                    .with_detail(format!("launching job {}", req.job_name));
                update.job_name = Some(req.job_name.clone());
                update.custom_model_name = Some(req.custom_model_name.clone());
                match self
                    .ledger
                    .update(run_id, &[RunStatus::Validated], &update)
                    .await
                {
                    Ok(_) => {}
                    // A concurrent launcher moved it first: follow whatever it recorded.
                    Err(PortError::Conflict(_)) => {
                        let now = self.reread(run_id).await?;
                        if let Some(out) = output_of(&now) {
                            return Ok(out);
                        }
                        if now.status != RunStatus::Launching {
                            return Err(StepError::new(
                                ErrorType::Conflict,
                                format!("run {run_id} is {}, cannot launch", now.status),
                            ));
                        }
                    }
                    Err(e) => return Err(e.context("moving the run to launching")),
                }
            }
            // A previous attempt recorded `launching` and stopped before recording the ARN.
            RunStatus::Launching => {}
            other => {
                return Err(StepError::new(
                    ErrorType::Conflict,
                    format!("run {run_id} is {other}; only a validated run can be launched"),
                ))
            }
        }

        let job_arn = match self.bedrock.create_distillation_job(&req).await {
            Ok(arn) => arn,
            // The job exists under our name (e.g. the token's idempotency window passed): adopt it.
            Err(PortError::Conflict(msg)) => match self.bedrock.get_job(&req.job_name).await {
                Ok(state) => {
                    tracing::warn!(%msg, "job name already taken; adopting the existing job");
                    state.job_arn
                }
                Err(_) => {
                    return Err(PortError::Conflict(msg).context("CreateModelCustomizationJob"))
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "Bedrock refused the job");
                return Err(e.context("CreateModelCustomizationJob"));
            }
        };
        tracing::info!(%job_arn, job_name = %req.job_name, "distillation job created");

        let mut update = RunUpdate::to(RunStatus::Training).with_detail(format!("job {job_arn}"));
        update.job_arn = Some(job_arn.clone());
        update.launched_at = Some(self.clock.now());
        match self
            .ledger
            .update(run_id, &[RunStatus::Launching], &update)
            .await
        {
            Ok(run) => Ok(output_of(&run).expect("job ARN was just recorded")),
            Err(PortError::Conflict(_)) => {
                let now = self.reread(run_id).await?;
                output_of(&now).ok_or_else(|| {
                    StepError::new(
                        ErrorType::Conflict,
                        format!(
                            "run {run_id} moved to {} while job {job_arn} was being recorded",
                            now.status
                        ),
                    )
                })
            }
            Err(e) => Err(e.context("recording the job ARN")),
        }
    }

    async fn reread(&self, run_id: &RunId) -> Result<Run, StepError> {
        self.ledger
            .get(run_id)
            .await
            .map_err(|e| e.context("re-reading the run"))?
            .ok_or_else(|| StepError::not_found(format!("run {run_id} disappeared")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::run::ValidationSummary;
    use crate::ports::SystemClock;
    use crate::testing::fakes::ScriptedBedrock;
    use crate::testing::memory::InMemoryRunLedger;
    use crate::testing::sample_run;

    async fn setup(
        key: &str,
    ) -> (
        JobLauncherService,
        Arc<InMemoryRunLedger>,
        Arc<ScriptedBedrock>,
        RunId,
    ) {
        let ledger = Arc::new(InMemoryRunLedger::new());
        let bedrock = Arc::new(ScriptedBedrock::default());
        let mut run = sample_run("data-bucket", key, "etag", 10, chrono::Utc::now());
        let id = run.run_id.clone();
        run.status = RunStatus::Validated;
        run.validation = Some(ValidationSummary {
            valid: true,
            ..Default::default()
        });
        ledger.create(&run).await.unwrap();
        let svc = JobLauncherService {
            ledger: ledger.clone(),
            bedrock: bedrock.clone(),
            clock: Arc::new(SystemClock),
            config: LauncherConfig::from_lookup(|k| {
                (k == "BEDROCK_ROLE_ARN").then(|| "arn:aws:iam::1:role/bedrock".to_string())
            })
            .unwrap(),
        };
        (svc, ledger, bedrock, id)
    }

    #[tokio::test]
    async fn launches_once_and_a_retry_returns_the_same_job() {
        let (svc, ledger, bedrock, id) =
            setup("incoming/Support Tickets.jsonl".replace(' ', "-").as_str()).await;
        let out = svc
            .handle(LaunchJobInput { run_id: id.clone() })
            .await
            .unwrap();
        let again = svc
            .handle(LaunchJobInput { run_id: id.clone() })
            .await
            .unwrap();
        assert_eq!(out, again);
        assert_eq!(bedrock.job_requests().len(), 1);
        assert_eq!(bedrock.calls(), ["create_job"]);
        let req = bedrock.job_requests()[0].clone();
        assert_eq!(
            req.client_request_token,
            naming::client_request_token(&id, "create-job")
        );
        assert_eq!(req.output_s3_uri, format!("s3://data-bucket/output/{id}/"));
        assert_eq!(req.job_tags["distillery:run-id"], id.to_string());
        assert_eq!(req.custom_model_tags["distillery:run-id"], id.to_string());
        assert_eq!(req.job_tags["distillery:managed-by"], "distillery");
        assert!(matches!(req.training_data, TrainingData::S3 { .. }));
        let run = ledger.get(&id).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Training);
        assert_eq!(run.job_arn.as_deref(), Some(out.job_arn.as_str()));
        assert!(run.launched_at.is_some());
        let path: Vec<RunStatus> = run.history.iter().map(|h| h.to).collect();
        assert_eq!(
            path[path.len() - 2..],
            [RunStatus::Launching, RunStatus::Training]
        );
    }

    #[tokio::test]
    async fn throttling_is_typed_and_the_retry_reuses_the_token() {
        let (svc, ledger, bedrock, id) = setup("incoming/a.jsonl").await;
        bedrock.fail_next_create(PortError::Throttled("slow".into()));
        bedrock.fail_next_create(PortError::QuotaExceeded("jobs".into()));
        let e = svc
            .handle(LaunchJobInput { run_id: id.clone() })
            .await
            .unwrap_err();
        assert_eq!(e.error_type, ErrorType::Throttled);
        assert_eq!(
            ledger.get(&id).await.unwrap().unwrap().status,
            RunStatus::Launching
        );
        let e = svc
            .handle(LaunchJobInput { run_id: id.clone() })
            .await
            .unwrap_err();
        assert_eq!(e.error_type, ErrorType::QuotaExceeded);
        svc.handle(LaunchJobInput { run_id: id.clone() })
            .await
            .unwrap();
        assert_eq!(bedrock.calls(), ["create_job"; 3]);
        let calls = bedrock.job_requests();
        assert_eq!(calls.len(), 3);
        assert!(calls
            .iter()
            .all(|c| c.client_request_token == calls[0].client_request_token
                && c.job_name == calls[0].job_name));
    }

    #[tokio::test]
    async fn a_rejected_run_or_a_bad_key_is_not_launched() {
        let (svc, ledger, bedrock, id) = setup("incoming/has space.jsonl").await;
        let e = svc
            .handle(LaunchJobInput { run_id: id.clone() })
            .await
            .unwrap_err();
        assert_eq!(e.error_type, ErrorType::ConfigInvalid);
        assert!(e.message.contains("space"), "{}", e.message);
        assert_eq!(
            ledger.get(&id).await.unwrap().unwrap().status,
            RunStatus::Validated
        );
        ledger
            .update(
                &id,
                &[RunStatus::Validated],
                &RunUpdate::to(RunStatus::Failed),
            )
            .await
            .unwrap();
        let e = svc.handle(LaunchJobInput { run_id: id }).await.unwrap_err();
        assert_eq!(e.error_type, ErrorType::Conflict);
        assert!(bedrock.calls().is_empty());
        let missing = svc
            .handle(LaunchJobInput {
                run_id: RunId("run-nope".into()),
            })
            .await
            .unwrap_err();
        assert_eq!(missing.error_type, ErrorType::NotFound);
        let fixture: LaunchJobInput =
            serde_json::from_str(include_str!("../../../../events/launch-job.json")).unwrap();
        assert!(fixture.run_id.as_str().starts_with("run-"));
        let _: LaunchJobOutput =
            serde_json::from_str(include_str!("../../../../events/launch-job-output.json"))
                .unwrap();
    }
}
