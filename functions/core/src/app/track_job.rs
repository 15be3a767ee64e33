//! Use case: learn that a distillation job ended from Bedrock's own event, not by polling
//! (the status poller's two event-mode entry points).
//!
//! The state machine waits on a task token (`WaitForJobEvent`, `.waitForTaskToken`):
//! - [`JobTracker::await_job`] runs on every entry of that wait. It records the token on the run.
//!   If the run already ended (an event got there first) it answers the token at once. On a re-entry
//!   (the wait timed out after the fallback interval with no event) it first polls Bedrock once,
//!   through the same [`StatusPoller`] as polling mode: a lost event costs at most one fallback
//!   interval, and the maximum job duration is enforced exactly as when polling.
//! - [`JobTracker::on_event`] handles a `Model Customization Job State Change` event (an
//!   EventBridge rule on the jobs Distillery names). It records the new status with the poller's
//!   own decision and write (conditional on the status it read), and on an end completes the wait
//!   with `SendTaskSuccess`, the output being the poll answer the state machine already routes
//!   (a failed job is data, not a task failure).
//!
//! Duplicate, late and out-of-order events are harmless: a run that already ended is never
//! rewritten (the ledger refuses it), and its recorded outcome is simply sent again; a token that
//! no longer waits answers "closed", which is logged and ignored. The order of the two writers
//! (event and wait entry) does not matter either: whichever writes second sees the other's write
//! and answers the token itself.

mod event;
pub use event::{JobStateChange, JobStateChangeDetail, DETAIL_TYPE, SOURCE};

use serde::{Deserialize, Serialize};

use crate::app::poll_status::{
    decide, job_status_str, recorded_outcome, PollOutcome, PollStatusInput, PollStatusOutput,
    StatusPoller,
};
use crate::domain::errors::{ErrorType, StepError};
use crate::domain::naming::run_id_for_job_name;
use crate::domain::run::{JobWait, Run, RunId, RunStatus, RunUpdate};
use crate::ports::{JobState, JobStatus, PortError, TaskAnswer, TaskCallbacks};

/// Input of the wait's Lambda: `{"runId", "taskToken"}` (`$$.Task.Token`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwaitJobInput {
    pub run_id: RunId,
    pub task_token: String,
}

/// What an entry of the wait did. The state machine ignores it (the task's result is what
/// `SendTaskSuccess` sends); it is the Lambda's log and the tests' evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwaitJobOutput {
    pub run_id: RunId,
    /// `waiting` (token recorded) or `answered` (the job had ended; the token was answered now).
    pub action: String,
    /// Which entry of the wait this was (1 = first).
    pub entry: u32,
    /// Whether this entry polled Bedrock (a re-entry after a fallback timeout).
    pub fallback_poll: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<PollOutcome>,
}

/// What an event did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobEventOutput {
    pub event_id: String,
    pub job_name: String,
    pub job_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    /// `recorded` (the run changed), `unchanged` (nothing new, or the run had already ended),
    /// `ignored` (not a job of a Distillery run, or a status this code does not know).
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<PollOutcome>,
    /// For an ended job: `delivered`, `closed` (no wait on that token any more) or `no_wait`
    /// (the execution has not reached its wait yet; it will find the outcome in the ledger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// The event-mode tracker: the poller (its decisions and writes) plus the task callbacks.
pub struct JobTracker<'a> {
    pub poller: StatusPoller<'a>,
    pub callbacks: &'a dyn TaskCallbacks,
}

impl JobTracker<'_> {
    /// One entry of the state machine's wait for the job's end.
    pub async fn await_job(&self, input: &AwaitJobInput) -> Result<AwaitJobOutput, StepError> {
        if input.task_token.trim().is_empty() {
            return Err(StepError::invalid_input(
                "field 'taskToken' is empty: pass $$.Task.Token",
            ));
        }
        let run = self.poller.load_run(&input.run_id).await?;
        let previous = run.job_wait.clone();
        let entry = previous.as_ref().map_or(0, |w| w.entries).saturating_add(1);
        let answered = |outcome, fallback_poll| AwaitJobOutput {
            run_id: run.run_id.clone(),
            action: "answered".into(),
            entry,
            fallback_poll,
            outcome: Some(outcome),
        };

        // The job ended before this wait began (an event, a fallback poll, or a retried entry).
        if let Some(out) = recorded_outcome(&run, entry) {
            self.answer(&run.run_id, &input.task_token, &out).await?;
            return Ok(answered(out.outcome, false));
        }
        if run.status != RunStatus::Training {
            return Err(StepError::new(
                ErrorType::Conflict,
                format!(
                    "run {} is {}: there is no distillation job to wait for",
                    run.run_id, run.status
                ),
            ));
        }

        // A re-entry: the previous wait ran out with no event. Poll once, as polling mode would.
        let mut consecutive_errors = 0;
        if let Some(previous) = &previous {
            let poll = PollStatusInput {
                run_id: run.run_id.clone(),
                attempt: previous.entries,
                consecutive_errors: previous.consecutive_errors,
                give_up: false,
            };
            let out = self.poller.poll(&poll).await?;
            tracing::info!(run_id = %run.run_id, entry, outcome = ?out.outcome, job_status = %out.job_status, "fallback poll after a wait with no event");
            if out.terminal {
                self.answer(&run.run_id, &input.task_token, &out).await?;
                return Ok(answered(out.outcome, true));
            }
            consecutive_errors = out.consecutive_errors;
        }

        let wait = JobWait {
            task_token: input.task_token.clone(),
            since: self.poller.clock.now(),
            entries: entry,
            consecutive_errors,
        };
        let update = RunUpdate {
            job_wait: Some(wait),
            ..Default::default()
        };
        match self
            .poller
            .ledger
            .update(&run.run_id, &[RunStatus::Training], &update)
            .await
        {
            Ok(_) => Ok(AwaitJobOutput {
                run_id: run.run_id.clone(),
                action: "waiting".into(),
                entry,
                fallback_poll: previous.is_some(),
                outcome: None,
            }),
            // The run left `training` since it was read: an event recorded the end first. Answer
            // with what it recorded (the event found no token, or the old one).
            Err(PortError::Conflict(m)) => {
                let fresh = self.poller.load_run(&run.run_id).await?;
                match recorded_outcome(&fresh, entry) {
                    Some(out) => {
                        self.answer(&run.run_id, &input.task_token, &out).await?;
                        Ok(answered(out.outcome, previous.is_some()))
                    }
                    // Still training: the write lost to other writers (an event, a `runs stop`
                    // note) too many times. The job is paid for, so this must not reach the
                    // state machine's failure path: the step's Retry enters the wait again.
                    None if fresh.status == RunStatus::Training => Err(StepError::new(
                        ErrorType::Transient,
                        format!(
                            "run {} kept changing while its wait began ({m}); try again",
                            run.run_id
                        ),
                    )),
                    None => Err(fresh.refuse("wait for its job")),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One Bedrock job state-change event.
    pub async fn on_event(&self, event: &JobStateChange) -> Result<JobEventOutput, StepError> {
        let detail = &event.detail;
        let mut output = JobEventOutput {
            event_id: event.id.clone(),
            job_name: detail.job_name.clone(),
            job_status: detail.job_status.clone(),
            run_id: None,
            action: "ignored".into(),
            outcome: None,
            task: None,
        };
        let Some(run_id) = run_id_for_job_name(&detail.job_name) else {
            tracing::info!(job_name = %detail.job_name, "event for a job Distillery did not name; ignored");
            return Ok(output);
        };
        let Some(run) = self.poller.ledger.get(&run_id).await? else {
            tracing::warn!(job_name = %detail.job_name, run_id = %run_id, "event for a job whose run is not in the ledger; ignored");
            return Ok(output);
        };
        output.run_id = Some(run_id.clone());
        let Some(status) = event.status() else {
            tracing::warn!(run_id = %run_id, job_status = %detail.job_status, "event with a job status this version does not know; ignored (the fallback poll still tracks the job)");
            return Ok(output);
        };
        match run.job_arn.as_deref() {
            Some(arn) if arn == detail.job_arn => {}
            // The launcher records the job in the same write that moves the run to `training`; an
            // event can beat that write. Ask for a redelivery rather than lose an end.
            None if run.status == RunStatus::Launching => {
                return Err(StepError::new(
                    ErrorType::Transient,
                    format!(
                        "run {run_id} is still launching; job {} is not recorded on it yet \
                         (deliver the event again)",
                        detail.job_arn
                    ),
                ));
            }
            other => {
                tracing::warn!(run_id = %run_id, recorded = ?other, event_job = %detail.job_arn, "event for another job than the run's; ignored");
                return Ok(output);
            }
        }

        let answer = if run.status == RunStatus::Training {
            let mut job = job_state_from_event(&run, detail, status);
            // Events are best effort and may lack a field; a completed run must name its model
            // (it can never be rewritten), so ask Bedrock once rather than record it without one.
            if status == JobStatus::Completed && job.output_model_arn.is_none() {
                match self.poller.bedrock.get_job(&detail.job_arn).await {
                    Ok(read) if read.status == JobStatus::Completed => job = read,
                    Ok(read) => {
                        tracing::warn!(run_id = %run_id, bedrock_status = ?read.status, "a Completed event without a model ARN, and Bedrock disagrees; recording what Bedrock says");
                        job = read;
                    }
                    Err(e) => {
                        return Err(StepError::from(e).context(format!(
                            "a Completed event for job {} carried no outputModelArn and                              GetModelCustomizationJob failed",
                            detail.job_arn
                        )))
                    }
                }
            }
            let decision = decide(&run, &job, self.poller.clock.now(), &self.poller.config);
            let changes = decision.update.is_some();
            let poll = PollStatusInput {
                run_id: run_id.clone(),
                attempt: run.job_wait.as_ref().map_or(0, |w| w.entries),
                consecutive_errors: 0,
                give_up: false,
            };
            let out = self
                .poller
                .carry_out(
                    &run,
                    &detail.job_arn,
                    &poll,
                    decision,
                    job_status_str(status),
                )
                .await?;
            output.outcome = Some(out.outcome);
            // The event says the job ended but the write did not land (it lost to concurrent
            // writers and the run is still `training`): fail the delivery so it comes again, rather
            // than leave the end to the fallback poll.
            if !out.terminal && is_end(job.status) {
                return Err(StepError::new(
                    ErrorType::Transient,
                    format!(
                        "run {run_id}: the {} event could not be recorded yet ({}); deliver it again",
                        detail.job_status,
                        out.poll_error.as_deref().unwrap_or("the run changed meanwhile")
                    ),
                ));
            }
            output.action = if changes { "recorded" } else { "unchanged" }.into();
            out.terminal.then_some(out)
        } else {
            // Already ended (a duplicate or late event): resend the recorded outcome, in case the
            // delivery that recorded it failed before answering the wait.
            output.action = "unchanged".into();
            let out = recorded_outcome(&run, 0);
            output.outcome = out.as_ref().map(|o| o.outcome);
            out
        };

        if let Some(out) = answer {
            // Re-read: the wait may have recorded its token after this event's read.
            let fresh = self.poller.load_run(&run_id).await?;
            output.task = Some(match fresh.job_wait {
                Some(wait) => {
                    match self.answer(&run_id, &wait.task_token, &out).await? {
                        TaskAnswer::Delivered => "delivered",
                        TaskAnswer::Closed(_) => "closed",
                    }
                }
                .into(),
                None => {
                    tracing::info!(run_id = %run_id, "no execution waits on this run yet; its wait will read the outcome from the ledger");
                    "no_wait".into()
                }
            });
        }
        tracing::info!(run_id = %run_id, event_id = %event.id, job_status = %detail.job_status, action = %output.action, task = ?output.task, "job state-change event handled");
        Ok(output)
    }

    /// Sends `out` to the wait on `token`. A closed token is logged, not an error; any other failure
    /// is (the caller's retry, or the fallback poll, sends it again).
    async fn answer(
        &self,
        run_id: &RunId,
        token: &str,
        out: &PollStatusOutput,
    ) -> Result<TaskAnswer, StepError> {
        let json = serde_json::to_value(out).map_err(|e| {
            StepError::new(
                ErrorType::Internal,
                format!("cannot encode the answer: {e}"),
            )
        })?;
        let sent = self
            .callbacks
            .send_success(token, &json)
            .await
            .map_err(|e| StepError::from(e).context(format!("SendTaskSuccess for run {run_id}")))?;
        match &sent {
            TaskAnswer::Delivered => {
                tracing::info!(run_id = %run_id, outcome = ?out.outcome, "answered the state machine's wait")
            }
            TaskAnswer::Closed(m) => {
                tracing::info!(run_id = %run_id, "the wait had already closed ({m}); nothing to do")
            }
        }
        Ok(sent)
    }
}

fn is_end(status: JobStatus) -> bool {
    matches!(
        status,
        JobStatus::Completed | JobStatus::Failed | JobStatus::Stopped
    )
}

/// The job as the event describes it. Events carry no sub-statuses, so the run's recorded ones are
/// kept (an event never erases what a poll saw).
fn job_state_from_event(run: &Run, detail: &JobStateChangeDetail, status: JobStatus) -> JobState {
    let known = run.training_detail.clone().unwrap_or_default();
    JobState {
        job_arn: detail.job_arn.clone(),
        status,
        validation: known.validation,
        data_processing: known.data_processing,
        training: known.training,
        failure_message: detail.failure_message.clone(),
        output_model_arn: detail.output_model_arn.clone(),
        output_model_name: detail.output_model_name.clone(),
    }
}

#[cfg(test)]
mod tests;
