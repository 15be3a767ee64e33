//! Use case behind the `job-launcher` Lambda: start the Bedrock distillation job for a validated run,
//! exactly once.
//!
//! Order matters for crash safety: the run moves `validated → launching` (recording the job and model
//! names) BEFORE Bedrock is called, with a `clientRequestToken` derived from the run id. A crash or
//! timeout after Bedrock accepted the job leaves the run in `launching`; the retry calls Bedrock again
//! with the same token and names, gets the same job back, and moves the run to `training` with the ARN.
//! A run already `training` (or later) with a job ARN returns that ARN without calling Bedrock.
//!
//! A run trains on its snapshot when it has one ([`training_data`]): an uploaded dataset, or a
//! curated invocation-log run, trains on `runs/<run-id>/dataset.jsonl`, written by the validator
//! with the bytes it validated, never on the upload key (which anyone may overwrite or delete) or
//! the raw logs; only a `native` invocation-log run hands Bedrock the log prefix. Before creating the job the launcher checks the snapshot is still there with the size and
//! ETag recorded on the run; if not, no job is created and the run is recorded `failed` with the
//! reason. The check runs again on every attempt that resumes a run in `launching` and finds no job
//! under the run's name: such a retry (QuotaExceeded, throttling, a crash) may come hours after the
//! first check, and the bytes Bedrock trains on must still be the bytes that were validated.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::config::{process_var, Env};
use crate::domain::errors::{ErrorType, StepError};
use crate::domain::naming;
use crate::domain::run::{DatasetLocation, LogRunMode, Run, RunId, RunStatus, RunUpdate};
use crate::domain::tags;
use crate::ports::{
    Clock, CustomizationService, DatasetStore, DistillationJobRequest, JobSlots, PortError,
    RunLedger, TaskCallbacks, TrainingData,
};

mod admission;
pub use admission::{
    queue_order, queue_places, AdmissionConfig, LauncherAction, QueuePlace, SweepInput,
    SweepReport, WakeReport, DEFAULT_MAX_QUEUE_HOURS, QUEUED_RUNS_PER_PASS, QUOTA_HOLD_SECONDS,
};

/// Whether `s` has the shape of Bedrock's `KmsKeyId` (botocore's bedrock service-2: a key or alias
/// ARN, a 36-character key id, or `alias/...`; 1 to 2,048 characters).
pub fn is_kms_key_id(s: &str) -> bool {
    let id_char = |c: char| c.is_ascii_alphanumeric() || c == '-';
    let alias = |a: &str| {
        a.strip_prefix("alias/").is_some_and(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_/".contains(c))
        })
    };
    let key_id = |k: &str| k.len() == 36 && k.chars().all(id_char);
    let arn = |a: &str| {
        let parts: Vec<&str> = a.splitn(6, ':').collect();
        matches!(parts.as_slice(), [arn, partition, "kms", region, account, resource]
            if *arn == "arn"
                && partition.starts_with("aws")
                && region.chars().all(id_char)
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && (resource.strip_prefix("key/").is_some_and(key_id) || alias(resource)))
    };
    !s.is_empty() && s.len() <= 2048 && (arn(s) || key_id(s) || alias(s))
}

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
    /// `CUSTOM_MODEL_KMS_KEY_ID`: the key the distilled model is encrypted with (the stack's key in
    /// AWS, so weights trained on customer text stay under the customer's key); unset, Bedrock uses
    /// an AWS owned key.
    pub custom_model_kms_key_id: Option<String>,
    /// The launch queue: `MAX_CONCURRENT_JOBS`, `MAX_QUEUE_HOURS` ([`admission`]).
    pub admission: AdmissionConfig,
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
        let custom_model_kms_key_id = match env.optional_string("CUSTOM_MODEL_KMS_KEY_ID") {
            Some(key) if !is_kms_key_id(&key) => {
                return Err(StepError::config(format!(
                    "CUSTOM_MODEL_KMS_KEY_ID must be a KMS key ARN, key id or alias (as Bedrock's customModelKmsKeyId takes), got '{key}'"
                )))
            }
            key => key,
        };
        Ok(LauncherConfig {
            role_arn,
            output_bucket: env.optional_string("OUTPUT_BUCKET"),
            output_prefix,
            custom_model_kms_key_id,
            admission: AdmissionConfig::from_env(&env)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchJobInput {
    pub run_id: RunId,
    /// `launch` when absent (see [`LauncherAction`]).
    #[serde(default)]
    pub action: LauncherAction,
    /// `awaitSlot`: the waiting state's task token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
}

impl LaunchJobInput {
    pub fn launch(run_id: RunId) -> Self {
        LaunchJobInput {
            run_id,
            action: LauncherAction::Launch,
            task_token: None,
        }
    }
}

/// What `LaunchJob` (or `SlotWaitTimedOut`) did with the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaunchOutcome {
    /// The job exists (created now or earlier); the run is `training`.
    Launched,
    /// No job slot: the run is `queued` and the execution waits in `WaitForSlot`.
    Queued,
    /// Stopped while queued (`distillery runs stop`): nothing launched; announced `stopped`.
    Stopped,
    /// Queued longer than `MAX_QUEUE_HOURS`: nothing launched.
    Expired,
}

/// Step output. Every key is always present (null when it does not apply), so the state
/// machine's `ResultSelector` can pick them whatever the outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchJobOutput {
    pub run_id: RunId,
    pub outcome: LaunchOutcome,
    /// Empty unless launched.
    pub job_arn: String,
    pub job_name: String,
    pub custom_model_name: String,
    /// Queued: the run's place in line (1 = next).
    pub position: Option<u32>,
    /// Queued: seconds left of `MAX_QUEUE_HOURS`, the `WaitForSlot` timeout.
    pub queue_timeout_seconds: Option<i64>,
}

impl LaunchJobOutput {
    fn for_run(run: &Run) -> Self {
        LaunchJobOutput {
            run_id: run.run_id.clone(),
            outcome: LaunchOutcome::Launched,
            job_arn: run.job_arn.clone().unwrap_or_default(),
            job_name: run.job_name.clone().unwrap_or_default(),
            custom_model_name: run.custom_model_name.clone().unwrap_or_default(),
            position: None,
            queue_timeout_seconds: None,
        }
    }
}

pub struct JobLauncherService {
    pub ledger: Arc<dyn RunLedger>,
    /// The stack's job slots (`MAX_CONCURRENT_JOBS`; the ledger table in AWS).
    pub slots: Arc<dyn JobSlots>,
    /// Resumes queued runs' waits (`SendTaskSuccess`).
    pub callbacks: Arc<dyn TaskCallbacks>,
    pub bedrock: Arc<dyn CustomizationService>,
    /// Reads the run's snapshot metadata (HEAD) before launch.
    pub store: Arc<dyn DatasetStore>,
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

/// What a run's job trains on, and the bucket its output goes to by default. The choice is made
/// here only:
/// - a run with a snapshot (the validated bytes: an upload's copy, or a curated invocation-log
///   run's converted window) trains on the snapshot, never on the upload key or the raw logs;
/// - a `native` invocation-log run (no snapshot) hands Bedrock the log prefix and
///   `requestMetadataFilters`, and Bedrock reads and filters the logs itself;
/// - anything else has no validated bytes to train on: `Conflict`, and nothing is launched.
pub fn training_data(run: &Run) -> Result<(TrainingData, String), StepError> {
    if let Some(snapshot) = &run.snapshot {
        let s3_uri = naming::check_dataset_object(&snapshot.bucket, &snapshot.key)?;
        return Ok((TrainingData::S3 { s3_uri }, snapshot.bucket.clone()));
    }
    let missing = |what: &str| {
        StepError::new(
            ErrorType::Conflict,
            format!(
                "run {} has no dataset snapshot ({what}), so there are no validated bytes to train on; nothing was launched",
                run.run_id
            ),
        )
    };
    match &run.dataset {
        DatasetLocation::S3Object { .. } => Err(missing("the validated copy of its upload")),
        DatasetLocation::InvocationLogs {
            mode: LogRunMode::Curated,
            ..
        } => Err(missing(
            "the converted invocation-log window a curated run trains on; the raw logs are never passed to Bedrock for it",
        )),
        DatasetLocation::InvocationLogs {
            s3_uri,
            request_metadata_filters,
            use_prompt_response,
            mode: LogRunMode::Native,
            ..
        } => {
            naming::check_s3_uri(s3_uri)?;
            let bucket = bucket_of(s3_uri).unwrap_or_default().to_string();
            Ok((
                TrainingData::InvocationLogs {
                    s3_uri: s3_uri.clone(),
                    use_prompt_response: *use_prompt_response,
                    request_metadata_filters: request_metadata_filters.clone(),
                },
                bucket,
            ))
        }
    }
}

fn output_of(run: &Run) -> Option<LaunchJobOutput> {
    run.job_arn.as_ref()?;
    Some(LaunchJobOutput::for_run(run))
}

impl JobLauncherService {
    /// `LaunchJob` only (whatever the input's `action`).
    pub async fn handle(&self, input: LaunchJobInput) -> Result<LaunchJobOutput, StepError> {
        let span = tracing::info_span!("run", run_id = %input.run_id);
        self.launch(&input.run_id).instrument(span).await
    }

    /// The launcher Lambda's entry: `LaunchJob` and the queue's other steps, by `action`.
    /// `awaitSlot` answers `{}` (its task output is what the wake-up sends); `releaseSlot` the
    /// wake-up pass it ran.
    pub async fn handle_action(
        &self,
        input: LaunchJobInput,
    ) -> Result<serde_json::Value, StepError> {
        let span = tracing::info_span!("run", run_id = %input.run_id, action = ?input.action);
        async {
            let value = |o: LaunchJobOutput| serde_json::to_value(o).unwrap_or_default();
            match input.action {
                LauncherAction::Launch => self.launch(&input.run_id).await.map(value),
                LauncherAction::WaitTimedOut => self.wait_timed_out(&input.run_id).await.map(value),
                LauncherAction::AwaitSlot => {
                    let token = input.task_token.as_deref().ok_or_else(|| {
                        StepError::config("action awaitSlot needs the wait's taskToken")
                    })?;
                    self.await_slot(&input.run_id, token).await?;
                    Ok(serde_json::json!({}))
                }
                LauncherAction::ReleaseSlot => {
                    let report = self.release_slot(&input.run_id).await?;
                    Ok(serde_json::to_value(report).unwrap_or_default())
                }
            }
        }
        .instrument(span)
        .await
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
        let (training_data, dataset_bucket) = training_data(run)?;
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
        let mut tags = tags::owned_by(&run.run_id);
        tags.extend([
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
            custom_model_kms_key_id: self.config.custom_model_kms_key_id.clone(),
        })
    }

    pub(crate) async fn launch(&self, run_id: &RunId) -> Result<LaunchJobOutput, StepError> {
        let run = self
            .ledger
            .get(run_id)
            .await
            .map_err(|e| e.context("reading the run"))?
            .ok_or_else(|| StepError::not_found(format!("run {run_id} does not exist")))?;

        // A retry of this step (the job was created and recorded, the answer lost) gets the recorded
        // job; a run already past training was never this execution's to launch again.
        if run.status == RunStatus::Training {
            if let Some(out) = output_of(&run) {
                tracing::info!(job_arn = %out.job_arn, "job already launched");
                return Ok(out);
            }
        }
        // Stopped (`distillery runs stop`) or expired while queued: nothing to launch.
        if run.queue.is_some()
            && run.job_arn.is_none()
            && matches!(run.status, RunStatus::Stopped | RunStatus::Expired)
        {
            return self.left_the_queue(&run).await;
        }
        if !matches!(
            run.status,
            RunStatus::Validated | RunStatus::Launching | RunStatus::Queued
        ) {
            return Err(run.refuse("launch: only a validated run can be launched"));
        }
        if run.status == RunStatus::Queued {
            let since = run.queue.as_ref().map_or(run.updated_at, |q| q.since);
            if (self.clock.now() - since).num_seconds() >= self.config.admission.max_queue_seconds {
                return self.expire(run_id).await;
            }
        }
        let req = match self.build_request(&run) {
            Ok(req) => req,
            Err(e) if e.error_type == ErrorType::Conflict => {
                return Err(self.fail_unlaunched(&run, e).await)
            }
            Err(e) => return Err(e),
        };
        // Checked before the run moves to `launching`; a run found in `launching` is checked again in
        // `resume_launching`, unless an earlier attempt already created its job.
        if matches!(run.status, RunStatus::Validated | RunStatus::Queued) {
            if let Err(e) = self.check_snapshot(&run).await? {
                return Err(self.fail_unlaunched(&run, e).await);
            }
            if let admission::Admission::Wait(reason) = self.admit(&run).await? {
                return self.enqueue(&run, reason, false).await;
            }
        }
        let adopted = match run.status {
            // Back from the queue after Bedrock refused the job: an earlier attempt recorded the
            // names, so look the job up first, as a resumed launch does.
            RunStatus::Queued if run.job_name.is_some() => {
                if let Err(e) = self.move_to_launching(&run, &req).await {
                    let now = self.reread(run_id).await?;
                    if matches!(now.status, RunStatus::Stopped | RunStatus::Expired) {
                        return self.left_the_queue(&now).await;
                    }
                    return Err(e);
                }
                self.resume_launching(&run, &req).await?
            }
            // A launch resumed in `launching`: a job an earlier attempt created is adopted
            // whatever the slots say (it runs and is billed already); with no job yet, the run
            // keeps (or takes back) its slot before Bedrock is asked again, or waits in the queue.
            RunStatus::Launching if self.config.admission.max_concurrent_jobs.is_some() => {
                let max = self
                    .config
                    .admission
                    .max_concurrent_jobs
                    .unwrap_or(u32::MAX);
                let holds = self
                    .slots
                    .acquire(run_id, max)
                    .await
                    .map_err(|e| e.context("taking a job slot"))?
                    .holds();
                let adopted = self.resume_launching(&run, &req).await?;
                if adopted.is_none() && !holds {
                    let reason = format!("all {max} job slot(s) taken (MAX_CONCURRENT_JOBS)");
                    return self.enqueue(&run, reason, false).await;
                }
                adopted
            }
            RunStatus::Validated | RunStatus::Queued => {
                let mut update = RunUpdate::to(RunStatus::Launching)
                    .with_detail(format!("launching job {}", req.job_name));
                update.job_name = Some(req.job_name.clone());
                update.custom_model_name = Some(req.custom_model_name.clone());
                match self.ledger.update(run_id, &[run.status], &update).await {
                    Ok(_) => {}
                    // A concurrent launcher moved it first: follow whatever it recorded.
                    Err(PortError::Conflict(_)) => {
                        let now = self.reread(run_id).await?;
                        if let Some(out) = output_of(&now) {
                            return Ok(out);
                        }
                        // Stopped (or expired) after it was given a slot: launch nothing.
                        if now.queue.is_some()
                            && matches!(now.status, RunStatus::Stopped | RunStatus::Expired)
                        {
                            return self.left_the_queue(&now).await;
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
                None
            }
            // A previous attempt recorded `launching` and stopped before recording the ARN.
            RunStatus::Launching => self.resume_launching(&run, &req).await?,
            other => {
                return Err(StepError::new(
                    ErrorType::Conflict,
                    format!("run {run_id} is {other}; only a validated run can be launched"),
                ))
            }
        };

        let job_arn = match adopted {
            Some(arn) => arn,
            None => match self.create_job(&req).await {
                Ok(arn) => arn,
                // Bedrock's own quota: wait in the queue rather than fail (held back a while, so
                // the run does not spin between the queue and Bedrock).
                // Queued first, then the slot given back (without a wake-up: the account is at
                // Bedrock's quota), so a crash in between never leaves a `launching` run that
                // holds no slot.
                Err(e) if e.error_type == ErrorType::QuotaExceeded => {
                    let run = self.reread(run_id).await?;
                    let out = self
                        .enqueue(
                            &run,
                            format!("Bedrock refused the job for its quota ({})", e.message),
                            true,
                        )
                        .await?;
                    self.give_back(run_id).await;
                    return Ok(out);
                }
                Err(e) => {
                    if !e.error_type.is_retryable() {
                        // The execution goes to its failure path: the slot goes to the next run.
                        self.hand_on(run_id).await;
                    }
                    return Err(e);
                }
            },
        };

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

    /// Queued → launching for a run whose names an earlier attempt recorded.
    async fn move_to_launching(
        &self,
        run: &Run,
        req: &DistillationJobRequest,
    ) -> Result<(), StepError> {
        let update = RunUpdate::to(RunStatus::Launching)
            .with_detail(format!("left the queue; launching job {}", req.job_name));
        self.ledger
            .update(&run.run_id, &[RunStatus::Queued], &update)
            .await
            .map(|_| ())
            .map_err(|e| e.context("moving the run to launching"))
    }

    /// Creates the run's job (same name and `clientRequestToken` on every attempt) and returns its ARN.
    async fn create_job(&self, req: &DistillationJobRequest) -> Result<String, StepError> {
        let job_arn = match self.bedrock.create_distillation_job(req).await {
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
        Ok(job_arn)
    }

    /// A run found in `launching`: an earlier attempt moved it there and stopped before recording a
    /// job ARN, either after Bedrock accepted the job (a crash or timeout) or because Bedrock refused
    /// it with a retryable error (QuotaExceeded, throttling), whose retries can come hours later.
    /// Looks the job up by the run's deterministic name first: an existing job is adopted
    /// (`Some(arn)`), never re-checked or abandoned, since it already trains on whatever it read.
    /// With no job yet, the snapshot is checked again right before the create (`None`), so a
    /// snapshot changed or deleted since the first check launches nothing.
    async fn resume_launching(
        &self,
        run: &Run,
        req: &DistillationJobRequest,
    ) -> Result<Option<String>, StepError> {
        match self.bedrock.get_job(&req.job_name).await {
            Ok(state) => {
                tracing::info!(job_arn = %state.job_arn, job_name = %req.job_name, "adopting the job an earlier attempt created");
                Ok(Some(state.job_arn))
            }
            Err(PortError::NotFound(_)) => {
                if let Err(e) = self.check_snapshot(run).await? {
                    return Err(self.fail_unlaunched(run, e).await);
                }
                Ok(None)
            }
            Err(e) => Err(e.context(format!(
                "looking up job {} (an earlier launch attempt may have created it)",
                req.job_name
            ))),
        }
    }

    /// Whether the run's snapshot is present and unchanged (HEAD: size and ETag as recorded).
    /// `Ok(Err(_))` is the answer "no, don't launch", with the reason; `Err` is a failure to ask.
    async fn check_snapshot(&self, run: &Run) -> Result<Result<(), StepError>, StepError> {
        let Some(snapshot) = &run.snapshot else {
            return Ok(Ok(()));
        };
        let head = self.store.head(&snapshot.bucket, &snapshot.key, None).await;
        let problem = match head {
            Ok(info) => {
                let etag = info.etag.trim_matches('"');
                if info.size == snapshot.size && etag == snapshot.etag {
                    return Ok(Ok(()));
                }
                StepError::new(
                    ErrorType::Conflict,
                    format!(
                        "the dataset snapshot {} changed after validation (now {} bytes, ETag \"{etag}\"; validated {} bytes, ETag \"{}\"); nothing was launched",
                        snapshot.uri, info.size, snapshot.size, snapshot.etag
                    ),
                )
            }
            Err(PortError::NotFound(_)) => StepError::not_found(format!(
                "the dataset snapshot {} is missing; nothing was launched",
                snapshot.uri
            )),
            Err(e) => {
                return Err(e.context(format!("checking the dataset snapshot {}", snapshot.uri)))
            }
        };
        Ok(Err(problem))
    }

    /// Records the run `failed` with the reason nothing was launched, and returns the error for the
    /// state machine (whose Catch announces the failure). No job exists: nothing to stop.
    async fn fail_unlaunched(&self, run: &Run, e: StepError) -> StepError {
        let reason = format!(
            "{}. Start a new attempt with `distillery runs retry {}`",
            e.message, run.run_id
        );
        tracing::warn!(%reason, "not launching");
        let update = RunUpdate {
            failure_reason: Some(reason.clone()),
            finished_at: Some(self.clock.now()),
            ..RunUpdate::to(RunStatus::Failed).with_detail(reason.clone())
        };
        if let Err(le) = self
            .ledger
            .update(&run.run_id, &[run.status], &update)
            .await
        {
            tracing::error!(error = %le, "could not record the failure on the run");
        }
        self.hand_on(&run.run_id).await;
        StepError::new(e.error_type, reason)
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
mod tests;

#[cfg(test)]
mod admission_tests;
