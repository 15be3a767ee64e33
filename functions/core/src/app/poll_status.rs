//! Use case: poll a distillation job (the `status-poller` Lambda).
//!
//! The state machine calls this in a loop with a Wait between calls. Each call reads the run from the
//! ledger, asks Bedrock for the job, writes to the ledger only when something changed (status or one of
//! the distillation sub-statuses), and returns whether the job is terminal and how long to wait before
//! the next poll.
//!
//! A job that exists is paid for, so no error path may leave it untracked:
//! - An error asking Bedrock about the job (throttling, 5xx, timeouts) is not a step failure: the run
//!   stays `training` and the answer is `running` with the longest wait, so polling goes on with
//!   backoff. Step Functions' own retries are a second line, not the only one.
//! - The pipeline gives up only when the job ran past `MAX_JOB_DURATION_SECONDS`, when a
//!   non-retryable error (AccessDenied, …) persisted for `giveUpAfterPermanentErrors` polls, or when the
//!   state machine's poll budget is spent (`giveUp: true`). Giving up means StopModelCustomizationJob,
//!   then the run recorded `stopped` with the exact reason ("Distillery stopped job X because …").
//! - If the stop itself fails, the run stays `training` (with the reason recorded) and the answer is
//!   `stop_failed`: the reconciler (`app::reconcile`) picks such runs up and retries the stop.
//!
//! Every call is safe to retry: a run already recorded as completed, failed or stopped is answered
//! from the ledger without a write or a Bedrock call, and every write is conditional on the status
//! this call read.

mod give_up;
pub use give_up::{stop_job, StopAttempt};

use serde::{Deserialize, Serialize};

use crate::domain::backoff::next_wait_seconds;
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
    /// Polls in a row that could not read the job from Bedrock (the previous answer's
    /// `consecutiveErrors`).
    #[serde(default)]
    pub consecutive_errors: u32,
    /// The state machine's poll budget is spent: stop the job if it is still running and record why.
    #[serde(default)]
    pub give_up: bool,
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
    /// The job ran past `MAX_JOB_DURATION_SECONDS`; this poller stopped it and recorded the run
    /// `stopped`.
    TimedOut,
    /// The pipeline gave up on the job but StopModelCustomizationJob failed: the run stays `training`
    /// (reason recorded) for the reconciler, which retries the stop.
    StopFailed,
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
    /// `Stopped`), or `Unknown` when this poll could not read the job.
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
    /// Polls in a row that could not read the job (0 after a good read); pass back as input.
    #[serde(default)]
    pub consecutive_errors: u32,
    /// Why this poll could not read the job, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_error: Option<String>,
}

mod config;
pub use config::PollConfig;

/// The start of every failure reason written for a timed-out job; it is how a re-poll of a run that
/// already timed out answers `timed_out` again rather than plain `failed`.
pub const TIMED_OUT_REASON_PREFIX: &str = "timed out:";

/// The start of the reason recorded on a run (still `training`) whose job the pipeline gave up on
/// but could not stop; the reconciler retries the stop of such runs (`giveUp`).
pub const STOP_FAILED_REASON_PREFIX: &str = "stop failed:";

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

        let now = self.clock.now();
        let job = match self.bedrock.get_job(&job_arn).await {
            Ok(job) => job,
            Err(e) => return self.after_poll_error(&run, &job_arn, input, now, e).await,
        };
        let mut decision = decide(&run, &job, now, &self.config);
        if input.give_up && !decision.outcome.is_terminal() {
            decision = give_up::decision(&run, &job_arn, now, give_up_reason(&run, input));
        }
        self.carry_out(&run, &job_arn, input, decision, job_status_str(job.status))
            .await
    }

    /// Carries out a decision: stops the job when asked (falling back to `stop_failed` when the stop
    /// fails), writes the ledger, and answers the state machine.
    pub(crate) async fn carry_out(
        &self,
        run: &Run,
        job_arn: &str,
        input: &PollStatusInput,
        mut decision: PollDecision,
        job_status: &str,
    ) -> Result<PollStatusOutput, StepError> {
        if decision.stop_job {
            tracing::warn!(run_id = %run.run_id, job_arn = %job_arn, reason = ?decision.failure_message, "giving up on the job; stopping it");
            match give_up::stop_job(self.bedrock, job_arn).await {
                give_up::StopAttempt::Stopping => {}
                // The job ended between our read and the stop: record how it ended instead of
                // "stopped".
                give_up::StopAttempt::Ended(job) => {
                    decision = decide(run, &job, self.clock.now(), &self.config);
                }
                give_up::StopAttempt::Gone(m) => {
                    tracing::error!(run_id = %run.run_id, "StopModelCustomizationJob: the job is gone: {m}");
                    decision = give_up::job_gone(&decision, job_arn, &m, self.clock.now());
                }
                give_up::StopAttempt::Failed(e) => {
                    tracing::error!(run_id = %run.run_id, "StopModelCustomizationJob failed: {e}");
                    decision = give_up::stop_failed(&decision, job_arn, &e);
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
                // already recorded a final answer, give that answer. If the run is still
                // `training`, keep tracking (a Conflict error here would reach the state
                // machine's failure path while the job runs): the next poll writes again.
                Err(PortError::Conflict(m)) => {
                    let fresh = self.load_run(&input.run_id).await?;
                    if let Some(out) = recorded_outcome(&fresh, input.attempt) {
                        return Ok(out);
                    }
                    if fresh.status == RunStatus::Training {
                        tracing::info!(run_id = %run.run_id, "a concurrent write won: {m}");
                        decision = PollDecision {
                            outcome: PollOutcome::Running,
                            update: None,
                            stop_job: false,
                            output_model_arn: None,
                            failure_message: None,
                            poll_error: Some(format!(
                                "the run changed while polling ({m}); polling again"
                            )),
                        };
                        return Ok(self.answer(run, input, decision, job_status));
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

        Ok(self.answer(run, input, decision, job_status))
    }

    /// The step's answer for `decision`.
    fn answer(
        &self,
        run: &Run,
        input: &PollStatusInput,
        decision: PollDecision,
        job_status: &str,
    ) -> PollStatusOutput {
        let terminal = decision.outcome.is_terminal();
        let next_wait_seconds = match (terminal, &decision.poll_error) {
            (true, _) => 0,
            // Bedrock did not answer: back off to the longest wait rather than add to a storm.
            (false, Some(_)) => self.config.max_wait_seconds,
            (false, None) => next_wait_seconds(
                self.config.initial_wait_seconds,
                self.config.max_wait_seconds,
                input.attempt,
            ),
        };
        PollStatusOutput {
            run_id: run.run_id.clone(),
            job_status: job_status.to_string(),
            outcome: decision.outcome,
            terminal,
            attempt: input.attempt.saturating_add(1),
            next_wait_seconds,
            output_model_arn: decision.output_model_arn,
            failure_message: decision.failure_message,
            serving: run.settings.serving,
            consecutive_errors: if decision.poll_error.is_some() {
                input.consecutive_errors.saturating_add(1)
            } else {
                0
            },
            poll_error: decision.poll_error,
        }
    }

    /// GetModelCustomizationJob failed. The job may well be running, so this is not the run's end:
    /// keep tracking (answer `running`, longest wait) unless the pipeline must give up now.
    async fn after_poll_error(
        &self,
        run: &Run,
        job_arn: &str,
        input: &PollStatusInput,
        now: chrono::DateTime<chrono::Utc>,
        error: PortError,
    ) -> Result<PollStatusOutput, StepError> {
        let errors_in_a_row = input.consecutive_errors.saturating_add(1);
        let error_text = format!("GetModelCustomizationJob {job_arn}: {error}");
        tracing::warn!(run_id = %run.run_id, errors_in_a_row, "{error_text}");
        let elapsed = elapsed_seconds(run, now);
        let why = if elapsed > self.config.max_job_duration_seconds {
            Some(give_up::Why::MaxDuration {
                elapsed,
                limit: self.config.max_job_duration_seconds,
            })
        } else if input.give_up {
            Some(give_up_reason(run, input))
        } else if !give_up::is_retryable(&error)
            && errors_in_a_row >= self.config.give_up_after_permanent_errors
        {
            Some(give_up::Why::PermanentPollErrors(errors_in_a_row))
        } else {
            None
        };
        let mut decision = match why {
            Some(why) => give_up::decision(run, job_arn, now, why),
            None => PollDecision {
                outcome: PollOutcome::Running,
                update: None,
                stop_job: false,
                output_model_arn: None,
                failure_message: None,
                poll_error: None,
            },
        };
        decision.poll_error = Some(error_text.clone());
        if let Some(u) = decision.update.as_mut() {
            u.detail = Some(format!(
                "{} (last poll error: {error_text})",
                u.detail.clone().unwrap_or_default()
            ));
        }
        self.carry_out(run, job_arn, input, decision, "Unknown")
            .await
    }

    pub(crate) async fn load_run(&self, run_id: &RunId) -> Result<Run, StepError> {
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
    /// Why this poll could not read the job from Bedrock, when it could not.
    pub poll_error: Option<String>,
}

/// Why a `giveUp` poll gives up: the reconciler retrying a failed stop, or the spent poll budget.
fn give_up_reason(run: &Run, input: &PollStatusInput) -> give_up::Why {
    if run
        .failure_reason
        .as_deref()
        .is_some_and(|r| r.starts_with(STOP_FAILED_REASON_PREFIX))
    {
        give_up::Why::EarlierStopFailed
    } else {
        give_up::Why::PollBudgetSpent(input.attempt)
    }
}

/// Seconds since the job was launched (or the run created, for a run without a launch time).
fn elapsed_seconds(run: &Run, now: chrono::DateTime<chrono::Utc>) -> u64 {
    let started = run.launched_at.unwrap_or(run.created_at);
    (now - started).num_seconds().max(0) as u64
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
                poll_error: None,
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
                poll_error: None,
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
                poll_error: None,
            }
        }
        JobStatus::InProgress | JobStatus::Stopping => {
            let elapsed = elapsed_seconds(run, now);
            if elapsed > config.max_job_duration_seconds {
                let mut d = give_up::decision(
                    run,
                    &job.job_arn,
                    now,
                    give_up::Why::MaxDuration {
                        elapsed,
                        limit: config.max_job_duration_seconds,
                    },
                );
                if let Some(u) = d.update.as_mut() {
                    u.training_detail = Some(detail);
                }
                // Already stopping: asking again would only be refused.
                d.stop_job = job.status == JobStatus::InProgress;
                return d;
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
                poll_error: None,
            }
        }
    }
}

/// The answer for a run whose job outcome is already on record, or `None` when it must be polled.
/// A run that never had a job (say, failed before launch) has no job outcome to answer with.
pub fn recorded_outcome(run: &Run, attempt: u32) -> Option<PollStatusOutput> {
    run.job_arn.as_ref()?;
    let (outcome, job_status) = match run.status {
        // Provisioning happens after a completed job, so the job's answer is still "completed".
        RunStatus::Completed
        | RunStatus::Provisioning
        | RunStatus::ServingQueued
        | RunStatus::Ready
        | RunStatus::ProvisioningFailed
        | RunStatus::Retired
        | RunStatus::GateFailed => (PollOutcome::Completed, JobStatus::Completed),
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
        RunStatus::Stopped => {
            let timed_out = run
                .failure_reason
                .as_deref()
                .is_some_and(|r| r.starts_with(TIMED_OUT_REASON_PREFIX));
            if timed_out {
                (PollOutcome::TimedOut, JobStatus::Stopped)
            } else {
                (PollOutcome::Stopped, JobStatus::Stopped)
            }
        }
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
        consecutive_errors: 0,
        poll_error: None,
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
