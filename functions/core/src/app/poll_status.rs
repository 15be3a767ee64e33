//! Use case: poll a distillation job (the `status-poller` Lambda).
//!
//! The state machine calls this in a loop with a Wait between calls. Each call reads the run from the
//! ledger, asks Bedrock for the job, writes to the ledger only when something changed (status or one of
//! the distillation sub-statuses), and returns whether the job is terminal and how long to wait before
//! the next poll. A job that runs past `MAX_JOB_DURATION_SECONDS` is stopped and the run recorded as
//! failed, so a stuck job can never keep the loop (and its bill) going forever.
//!
//! Every call is safe to retry: a run already recorded as completed, failed or stopped is answered
//! from the ledger without a write or a Bedrock call, and every write is conditional on the status
//! this call read.

use serde::{Deserialize, Serialize};

use crate::config::{process_var, Env};
use crate::domain::backoff::next_wait_seconds;
use crate::domain::catalog::Limits;
use crate::domain::errors::{ErrorType, StepError};
use crate::domain::run::{Run, RunId, RunStatus, RunUpdate, TrainingDetail};
use crate::domain::settings::ServingMode;
use crate::ports::{Clock, CustomizationService, JobState, JobStatus, PortError, RunLedger};

/// Step input: `{"runId","attempt"}`; `attempt` (0-based poll count) defaults to 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollStatusInput {
    pub run_id: RunId,
    #[serde(default)]
    pub attempt: u32,
}

/// What this poll found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollOutcome {
    /// The job is still going (Bedrock `InProgress` or `Stopping`): wait and poll again.
    Running,
    Completed,
    Failed,
    /// Someone stopped the job (Bedrock `Stopped`).
    Stopped,
    /// The job ran past `MAX_JOB_DURATION_SECONDS`; this poller stopped it and recorded the run failed.
    TimedOut,
}

impl PollOutcome {
    pub fn is_terminal(self) -> bool {
        !matches!(self, PollOutcome::Running)
    }
}

/// Step output, see `docs/contracts.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollStatusOutput {
    pub run_id: RunId,
    /// Bedrock's job status as Bedrock spells it (`InProgress`, `Completed`, `Failed`, `Stopping`,
    /// `Stopped`).
    pub job_status: String,
    pub outcome: PollOutcome,
    pub terminal: bool,
    /// The attempt number to pass to the next poll (this call's attempt + 1).
    pub attempt: u32,
    /// Seconds to wait before the next poll (0 when terminal).
    pub next_wait_seconds: u64,
    pub output_model_arn: Option<String>,
    pub failure_message: Option<String>,
    /// The run's serving mode, so the state machine can skip provisioning without another read.
    pub serving: ServingMode,
}

/// Poller settings, from the environment with defaults from `data/limits.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollConfig {
    pub initial_wait_seconds: u64,
    pub max_wait_seconds: u64,
    pub max_job_duration_seconds: u64,
}

impl PollConfig {
    pub fn defaults(limits: &Limits) -> Self {
        PollConfig {
            initial_wait_seconds: limits.polling.initial_wait_seconds,
            max_wait_seconds: limits.polling.max_wait_seconds,
            max_job_duration_seconds: limits.polling.max_job_duration_hours.saturating_mul(3600),
        }
    }

    /// Reads `POLL_INITIAL_WAIT_SECONDS`, `POLL_MAX_WAIT_SECONDS` and `MAX_JOB_DURATION_SECONDS`
    /// through `lookup` (the process environment in Lambda; a map in tests). Unset (or empty, see
    /// [`crate::config`]) means the default; anything else must be a positive whole number.
    pub fn from_lookup(
        limits: &Limits,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StepError> {
        let env = Env::new(lookup);
        let d = Self::defaults(limits);
        let c = PollConfig {
            initial_wait_seconds: env
                .positive_u64("POLL_INITIAL_WAIT_SECONDS", d.initial_wait_seconds)?,
            max_wait_seconds: env.positive_u64("POLL_MAX_WAIT_SECONDS", d.max_wait_seconds)?,
            max_job_duration_seconds: env
                .positive_u64("MAX_JOB_DURATION_SECONDS", d.max_job_duration_seconds)?,
        };
        if c.initial_wait_seconds > c.max_wait_seconds {
            return Err(StepError::config(format!(
                "POLL_INITIAL_WAIT_SECONDS ({}) must not exceed POLL_MAX_WAIT_SECONDS ({})",
                c.initial_wait_seconds, c.max_wait_seconds
            )));
        }
        Ok(c)
    }

    /// Reads the process environment.
    pub fn from_env(limits: &Limits) -> Result<Self, StepError> {
        Self::from_lookup(limits, process_var)
    }
}

/// The start of every failure reason written for a timed-out job; it is how a re-poll of a run that
/// already timed out answers `timed_out` again rather than plain `failed`.
pub const TIMED_OUT_REASON_PREFIX: &str = "timed out:";

/// The poller's dependencies. Built once per Lambda container.
pub struct StatusPoller<'a> {
    pub ledger: &'a dyn RunLedger,
    pub bedrock: &'a dyn CustomizationService,
    pub clock: &'a dyn Clock,
    pub config: PollConfig,
}

impl StatusPoller<'_> {
    pub async fn poll(&self, input: &PollStatusInput) -> Result<PollStatusOutput, StepError> {
        let run = self.load_run(&input.run_id).await?;

        // Already decided (a retry, or a duplicate execution): answer from the ledger, write nothing.
        if let Some(out) = recorded_outcome(&run, input.attempt) {
            return Ok(out);
        }
        // The launcher records the job ARN in the same write that moves the run to `training`.
        if run.status != RunStatus::Training {
            return Err(StepError::new(
                ErrorType::Conflict,
                format!(
                    "run {} is {}: there is no distillation job to poll",
                    run.run_id, run.status
                ),
            ));
        }
        let Some(job_arn) = run.job_arn.clone() else {
            return Err(StepError::new(
                ErrorType::Conflict,
                format!(
                    "run {} is {} but has no job ARN recorded yet",
                    run.run_id, run.status
                ),
            ));
        };

        let job = self
            .bedrock
            .get_job(&job_arn)
            .await
            .map_err(|e| e.context(format!("GetModelCustomizationJob {job_arn}")))?;
        let now = self.clock.now();
        let decision = decide(&run, &job, now, &self.config);

        if decision.stop_job {
            tracing::warn!(run_id = %run.run_id, job_arn = %job_arn, "job exceeded the maximum duration; stopping it");
            match self.bedrock.stop_job(&job_arn).await {
                Ok(()) => {}
                // The job finished or is already stopping between our read and the stop: the run
                // is still recorded as timed out, which is what the operator needs to know.
                Err(PortError::Conflict(m)) | Err(PortError::Validation(m)) => {
                    tracing::warn!(run_id = %run.run_id, "StopModelCustomizationJob refused: {m}");
                }
                Err(e) => {
                    return Err(e.context(format!("StopModelCustomizationJob {job_arn}")));
                }
            }
        }

        if let Some(update) = &decision.update {
            let expected = [run.status];
            match self.ledger.update(&run.run_id, &expected, update).await {
                Ok(written) => {
                    tracing::info!(
                        run_id = %run.run_id,
                        from = %run.status,
                        to = %written.status,
                        detail = ?update.detail,
                        "recorded job status change"
                    );
                }
                // A concurrent poll (a retried Lambda, a duplicated execution) wrote first. If it
                // already recorded a final answer, give that answer; otherwise let the state
                // machine retry.
                Err(PortError::Conflict(m)) => {
                    let fresh = self.load_run(&input.run_id).await?;
                    if let Some(out) = recorded_outcome(&fresh, input.attempt) {
                        return Ok(out);
                    }
                    return Err(StepError::new(
                        ErrorType::Conflict,
                        format!("run {} changed while polling: {m}", run.run_id),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            tracing::debug!(run_id = %run.run_id, "no change since the last poll");
        }

        let terminal = decision.outcome.is_terminal();
        Ok(PollStatusOutput {
            run_id: run.run_id.clone(),
            job_status: job_status_str(job.status).to_string(),
            outcome: decision.outcome,
            terminal,
            attempt: input.attempt.saturating_add(1),
            next_wait_seconds: if terminal {
                0
            } else {
                next_wait_seconds(
                    self.config.initial_wait_seconds,
                    self.config.max_wait_seconds,
                    input.attempt,
                )
            },
            output_model_arn: decision.output_model_arn,
            failure_message: decision.failure_message,
            serving: run.settings.serving,
        })
    }

    async fn load_run(&self, run_id: &RunId) -> Result<Run, StepError> {
        self.ledger
            .get(run_id)
            .await?
            .ok_or_else(|| StepError::not_found(format!("run {run_id} is not in the ledger")))
    }
}

/// What one poll decides, computed purely from the run, the job and the time.
#[derive(Debug, Clone, PartialEq)]
pub struct PollDecision {
    pub outcome: PollOutcome,
    /// The ledger write, or `None` when nothing changed since the last poll.
    pub update: Option<RunUpdate>,
    /// Whether the job must be stopped (it ran too long).
    pub stop_job: bool,
    pub output_model_arn: Option<String>,
    pub failure_message: Option<String>,
}

/// Decides what a poll means for a run that is still `training`.
pub fn decide(
    run: &Run,
    job: &JobState,
    now: chrono::DateTime<chrono::Utc>,
    config: &PollConfig,
) -> PollDecision {
    let detail = TrainingDetail {
        validation: job.validation.clone(),
        data_processing: job.data_processing.clone(),
        training: job.training.clone(),
    };
    let detail_changed = run.training_detail.as_ref() != Some(&detail)
        && !(run.training_detail.is_none() && detail == TrainingDetail::default());

    match job.status {
        JobStatus::Completed => {
            let arn = job.output_model_arn.clone();
            let mut update = RunUpdate::to(RunStatus::Completed).with_detail(match &arn {
                Some(a) => format!("Bedrock job Completed; custom model {a}"),
                None => "Bedrock job Completed".to_string(),
            });
            update.training_detail = Some(detail);
            update.custom_model_arn = arn.clone();
            update.custom_model_name = job.output_model_name.clone();
            update.finished_at = Some(now);
            PollDecision {
                outcome: PollOutcome::Completed,
                update: Some(update),
                stop_job: false,
                output_model_arn: arn,
                failure_message: None,
            }
        }
        JobStatus::Failed => {
            let reason = job
                .failure_message
                .clone()
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| {
                    "Bedrock reported the job Failed without a failure message".into()
                });
            let mut update = RunUpdate::to(RunStatus::Failed)
                .with_detail(format!("Bedrock job Failed: {reason}"));
            update.training_detail = Some(detail);
            update.failure_reason = Some(reason.clone());
            update.finished_at = Some(now);
            PollDecision {
                outcome: PollOutcome::Failed,
                update: Some(update),
                stop_job: false,
                output_model_arn: None,
                failure_message: Some(reason),
            }
        }
        JobStatus::Stopped => {
            let reason = job
                .failure_message
                .clone()
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| "the job was stopped before it completed".into());
            let mut update = RunUpdate::to(RunStatus::Stopped)
                .with_detail(format!("Bedrock job Stopped: {reason}"));
            update.training_detail = Some(detail);
            update.failure_reason = Some(reason.clone());
            update.finished_at = Some(now);
            PollDecision {
                outcome: PollOutcome::Stopped,
                update: Some(update),
                stop_job: false,
                output_model_arn: None,
                failure_message: Some(reason),
            }
        }
        JobStatus::InProgress | JobStatus::Stopping => {
            let started = run.launched_at.unwrap_or(run.created_at);
            let elapsed = (now - started).num_seconds().max(0) as u64;
            if elapsed > config.max_job_duration_seconds {
                let reason = format!(
                    "{TIMED_OUT_REASON_PREFIX} the job ran {elapsed}s since launch at {}, longer than \
                     MAX_JOB_DURATION_SECONDS={}; Distillery stopped it (tokens used so far are billed, \
                     no model is produced)",
                    started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    config.max_job_duration_seconds
                );
                let mut update = RunUpdate::to(RunStatus::Failed).with_detail(reason.clone());
                update.training_detail = Some(detail);
                update.failure_reason = Some(reason.clone());
                update.finished_at = Some(now);
                return PollDecision {
                    outcome: PollOutcome::TimedOut,
                    update: Some(update),
                    // Already stopping: asking again would only be refused.
                    stop_job: job.status == JobStatus::InProgress,
                    output_model_arn: None,
                    failure_message: Some(reason),
                };
            }
            let update = if detail_changed {
                // Training -> Training is an allowed move: it appends a history entry that records
                // the sub-status change, and nothing is written when nothing changed.
                let mut u = RunUpdate::to(RunStatus::Training).with_detail(format!(
                    "{}: {}",
                    job_status_str(job.status),
                    detail.summary()
                ));
                u.training_detail = Some(detail);
                Some(u)
            } else {
                None
            };
            PollDecision {
                outcome: PollOutcome::Running,
                update,
                stop_job: false,
                output_model_arn: None,
                failure_message: None,
            }
        }
    }
}

/// The answer for a run whose job outcome is already on record, or `None` when it must be polled.
pub fn recorded_outcome(run: &Run, attempt: u32) -> Option<PollStatusOutput> {
    let (outcome, job_status) = match run.status {
        // Provisioning happens after a completed job, so the job's answer is still "completed".
        RunStatus::Completed
        | RunStatus::Provisioning
        | RunStatus::Ready
        | RunStatus::ProvisioningFailed => (PollOutcome::Completed, JobStatus::Completed),
        RunStatus::Failed => {
            let timed_out = run
                .failure_reason
                .as_deref()
                .is_some_and(|r| r.starts_with(TIMED_OUT_REASON_PREFIX));
            if timed_out {
                // We asked Bedrock to stop it; its last known state is not on record.
                (PollOutcome::TimedOut, JobStatus::Stopping)
            } else {
                (PollOutcome::Failed, JobStatus::Failed)
            }
        }
        RunStatus::Stopped => (PollOutcome::Stopped, JobStatus::Stopped),
        _ => return None,
    };
    Some(PollStatusOutput {
        run_id: run.run_id.clone(),
        job_status: job_status_str(job_status).to_string(),
        outcome,
        terminal: true,
        attempt: attempt.saturating_add(1),
        next_wait_seconds: 0,
        output_model_arn: if outcome == PollOutcome::Completed {
            run.custom_model_arn.clone()
        } else {
            None
        },
        failure_message: if outcome == PollOutcome::Completed {
            None
        } else {
            run.failure_reason.clone()
        },
        serving: run.settings.serving,
    })
}

/// Bedrock's spelling of a job status.
pub fn job_status_str(s: JobStatus) -> &'static str {
    match s {
        JobStatus::InProgress => "InProgress",
        JobStatus::Completed => "Completed",
        JobStatus::Failed => "Failed",
        JobStatus::Stopping => "Stopping",
        JobStatus::Stopped => "Stopped",
    }
}

/// Fixtures shared by the unit tests of the poller and the provisioner: a training run and Bedrock
/// job states. (The fakes, a scripted Bedrock and a fixed clock, are in `crate::testing::fakes`; the
/// ledger is the in-memory adapter; integration tests use the real ones.)
#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests;
