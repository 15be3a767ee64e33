//! When the poller gives up on a job, and what it records: the job is stopped and the run recorded
//! `stopped` with a reason that says who stopped which job and why; or, when the stop itself fails,
//! the run stays `training` for the reconciler and the answer is `stop_failed`.

use chrono::{DateTime, Utc};

use super::{PollDecision, PollOutcome, STOP_FAILED_REASON_PREFIX, TIMED_OUT_REASON_PREFIX};
use crate::domain::run::{Run, RunStatus, RunUpdate};
use crate::ports::{CustomizationService, JobState, JobStatus, PortError};

/// Why the pipeline gives up on a job that may still be running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The job ran `elapsed` seconds since launch, more than `limit` (`MAX_JOB_DURATION_SECONDS`).
    MaxDuration { elapsed: u64, limit: u64 },
    /// GetModelCustomizationJob failed with a non-retryable error this many polls in a row.
    PermanentPollErrors(u32),
    /// The state machine's poll budget is spent (after this many polls).
    PollBudgetSpent(u32),
    /// An earlier give-up could not stop the job; the reconciler retries the stop.
    EarlierStopFailed,
}

/// Errors that say nothing about the job, only that Bedrock could not answer now.
pub fn is_retryable(e: &PortError) -> bool {
    matches!(
        e,
        PortError::Throttled(_)
            | PortError::Transient(_)
            | PortError::QuotaExceeded(_)
            | PortError::Other(_)
    )
}

/// The decision to stop `job_arn` and record the run `stopped` for `why`.
pub fn decision(run: &Run, job_arn: &str, now: DateTime<Utc>, why: Why) -> PollDecision {
    let because = match why {
        Why::MaxDuration { elapsed, limit } => format!(
            "it ran {elapsed}s since launch at {}, longer than MAX_JOB_DURATION_SECONDS={limit}",
            run.launched_at
                .unwrap_or(run.created_at)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        Why::PermanentPollErrors(n) => format!(
            "GetModelCustomizationJob failed with a non-retryable error {n} polls in a row, so \
             the pipeline could no longer track it"
        ),
        Why::PollBudgetSpent(n) => {
            format!("it was still running after {n} polls, the state machine's poll budget")
        }
        Why::EarlierStopFailed => "the pipeline had given up on it earlier but could not stop \
             it then (the reconciler retried the stop)"
            .to_string(),
    };
    let prefix = match why {
        Why::MaxDuration { .. } => format!("{TIMED_OUT_REASON_PREFIX} "),
        _ => String::new(),
    };
    let reason = format!(
        "{prefix}the pipeline stopped job {job_arn} because {because} (tokens processed so far are \
         billed, no model is produced)"
    );
    let mut update = RunUpdate::to(RunStatus::Stopped).with_detail(reason.clone());
    update.failure_reason = Some(reason.clone());
    update.finished_at = Some(now);
    PollDecision {
        outcome: match why {
            Why::MaxDuration { .. } => PollOutcome::TimedOut,
            _ => PollOutcome::Stopped,
        },
        update: Some(update),
        stop_job: true,
        output_model_arn: None,
        failure_message: Some(reason),
        poll_error: None,
    }
}

/// The stop failed: keep the run `training` (a Training -> Training write that records why), so the
/// reconciler, which looks at `training` runs past their maximum duration, retries the stop.
pub fn stop_failed(given_up: &PollDecision, job_arn: &str, error: &PortError) -> PollDecision {
    let why = given_up
        .failure_message
        .clone()
        .unwrap_or_else(|| "the pipeline gave up on it".into());
    let reason = format!(
        "{STOP_FAILED_REASON_PREFIX} the pipeline tried to stop job {job_arn} ({why}) but StopModelCustomizationJob failed: \
         {error}. The job may still be running and billed; the run stays training so the \
         reconciler (scheduled, or `distillery runs reconcile`) retries the stop"
    );
    let mut update = RunUpdate::to(RunStatus::Training).with_detail(reason.clone());
    update.failure_reason = Some(reason.clone());
    PollDecision {
        outcome: PollOutcome::StopFailed,
        update: Some(update),
        stop_job: false,
        output_model_arn: None,
        failure_message: Some(reason),
        poll_error: given_up.poll_error.clone(),
    }
}

/// What asking Bedrock to stop a job came to. The poller and the reconciler both stop jobs through
/// [`stop_job`], so a refusal means the same thing to both.
#[derive(Debug, Clone, PartialEq)]
pub enum StopAttempt {
    /// Bedrock accepted the stop, or refused it because the job is already `Stopping`.
    Stopping,
    /// Bedrock refused the stop because the job had already ended: its state, re-read after the
    /// refusal (`Completed`, `Failed` or `Stopped`).
    Ended(JobState),
    /// Bedrock does not know the job (NotFound): there is nothing left to stop.
    Gone(String),
    /// The job was not stopped and may still be training (and billed).
    Failed(PortError),
}

/// StopModelCustomizationJob, then what it means. A refusal (Conflict/Validation) is accepted only
/// when a re-read shows the job `Stopping` or ended: a refused stop of a job still `InProgress`, or
/// one whose re-read fails, is a failed stop, never a stopped job.
pub async fn stop_job(bedrock: &dyn CustomizationService, job_arn: &str) -> StopAttempt {
    let refusal = match bedrock.stop_job(job_arn).await {
        Ok(()) => return StopAttempt::Stopping,
        Err(PortError::NotFound(m)) => return StopAttempt::Gone(m),
        Err(PortError::Conflict(m)) | Err(PortError::Validation(m)) => m,
        Err(e) => return StopAttempt::Failed(e),
    };
    tracing::warn!(
        job_arn,
        "StopModelCustomizationJob refused: {refusal}; re-reading the job"
    );
    match bedrock.get_job(job_arn).await {
        Ok(job) => match job.status {
            JobStatus::Stopping => StopAttempt::Stopping,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Stopped => StopAttempt::Ended(job),
            JobStatus::InProgress => StopAttempt::Failed(PortError::Conflict(format!(
                "StopModelCustomizationJob was refused ({refusal}) but the job is still InProgress"
            ))),
        },
        Err(PortError::NotFound(m)) => StopAttempt::Gone(m),
        Err(e) => StopAttempt::Failed(PortError::Conflict(format!(
            "StopModelCustomizationJob was refused ({refusal}) and re-reading the job failed ({e}), \
             so whether it still trains is unknown"
        ))),
    }
}

/// The pipeline gave up on a job that Bedrock no longer knows (NotFound on stop): there is nothing
/// to stop, so the run gets its end recorded (`failed`) instead of a stop retried forever.
pub fn job_gone(
    given_up: &PollDecision,
    job_arn: &str,
    not_found: &str,
    now: DateTime<Utc>,
) -> PollDecision {
    let why = given_up
        .failure_message
        .clone()
        .unwrap_or_else(|| "the pipeline gave up on it".into());
    let reason = format!(
        "Bedrock no longer knows job {job_arn} (StopModelCustomizationJob: not found: {not_found}), \
         so there is nothing to stop and no model; the pipeline had given up on it ({why})"
    );
    let mut update = RunUpdate::to(RunStatus::Failed).with_detail(reason.clone());
    update.failure_reason = Some(reason.clone());
    update.finished_at = Some(now);
    PollDecision {
        outcome: PollOutcome::Failed,
        update: Some(update),
        stop_job: false,
        output_model_arn: None,
        failure_message: Some(reason),
        poll_error: given_up.poll_error.clone(),
    }
}
