//! Use case: stop a training run by hand (`distillery runs stop <run-id>`).
//!
//! This only asks Bedrock to stop the job (StopModelCustomizationJob) and notes who asked on the
//! run's history. The run moves to `stopped` the way every job end reaches the ledger: Bedrock's
//! `Stopped` state-change event (or the fallback/polling read) records it and resumes the
//! execution, which announces it once. Recording `stopped` here as well would race that path and
//! could announce the end twice.
//!
//! A `queued` run has no job: it is recorded `stopped` here, and its execution's wait for a slot
//! is resumed so that `LaunchJob` finds it stopped, launches nothing and passes any slot it was
//! handed to the next run.

use serde::Serialize;

use crate::app::poll_status::{job_status_str, stop_job, StopAttempt};
use crate::domain::errors::StepError;
use crate::domain::run::{RunId, RunStatus, RunUpdate};
use crate::ports::{Clock, CustomizationService, RunLedger, TaskCallbacks};

/// What the stop request found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopRequest {
    pub run_id: RunId,
    pub job_arn: String,
    /// `stopping` (Bedrock accepted; the run becomes `stopped` when the job has stopped),
    /// `already_ended` (the job had ended; the pipeline records how) or `dequeued` (a queued
    /// run, now `stopped`: nothing was launched; `job_arn` is empty).
    pub result: String,
    /// The job status Bedrock reported, when the job had already ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_status: Option<String>,
}

pub struct RunStopper<'a> {
    pub ledger: &'a dyn RunLedger,
    pub bedrock: &'a dyn CustomizationService,
    pub clock: &'a dyn Clock,
    /// Resumes a queued run's wait (`SendTaskSuccess`).
    pub callbacks: &'a dyn TaskCallbacks,
}

impl RunStopper<'_> {
    /// Stops the job of `run_id`, a run in `training`; `requested_by` names who asked (recorded).
    pub async fn stop(&self, run_id: &RunId, requested_by: &str) -> Result<StopRequest, StepError> {
        let run =
            self.ledger.get(run_id).await?.ok_or_else(|| {
                StepError::not_found(format!("run {run_id} is not in the ledger"))
            })?;
        if run.status == RunStatus::Queued {
            return self.dequeue(&run, requested_by).await;
        }
        if run.status != RunStatus::Training {
            return Err(run.refuse(
                "stop it (only a queued run, or one in training with a job, can be stopped)",
            ));
        }
        let Some(job_arn) = run.job_arn.clone() else {
            return Err(run.refuse("stop it: no job is recorded on it yet"));
        };
        match stop_job(self.bedrock, &job_arn).await {
            StopAttempt::Stopping => {
                let note = RunUpdate::to(RunStatus::Training).with_detail(format!(
                    "stop of job {job_arn} requested by {requested_by} at {}",
                    self.clock
                        .now()
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ));
                // The note is history only; if the run ended meanwhile, the stop still happened.
                if let Err(e) = self
                    .ledger
                    .update(run_id, &[RunStatus::Training], &note)
                    .await
                {
                    tracing::warn!(run_id = %run_id, "the stop was sent but not noted on the run: {e}");
                }
                Ok(StopRequest {
                    run_id: run_id.clone(),
                    job_arn,
                    result: "stopping".into(),
                    job_status: None,
                })
            }
            StopAttempt::Ended(job) => Ok(StopRequest {
                run_id: run_id.clone(),
                job_arn,
                result: "already_ended".into(),
                job_status: Some(job_status_str(job.status).into()),
            }),
            StopAttempt::Gone(m) => Err(StepError::not_found(format!(
                "Bedrock does not know job {job_arn} of run {run_id}: {m} (`distillery runs \
                 reconcile` settles the run)"
            ))),
            StopAttempt::Failed(e) => Err(e.context(format!(
                "StopModelCustomizationJob {job_arn} (run {run_id})"
            ))),
        }
    }

    /// Stops a queued run: recorded `stopped` (conditional on it still being queued, so a run
    /// that launched meanwhile is refused, not marked), then its wait is resumed.
    async fn dequeue(
        &self,
        run: &crate::domain::run::Run,
        requested_by: &str,
    ) -> Result<StopRequest, StepError> {
        let now = self.clock.now();
        let reason = format!(
            "stopped while queued by {requested_by} at {}; nothing was launched",
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let update = RunUpdate {
            failure_reason: Some(reason.clone()),
            finished_at: Some(now),
            ..RunUpdate::to(RunStatus::Stopped).with_detail(reason)
        };
        let written = match self
            .ledger
            .update(&run.run_id, &[RunStatus::Queued], &update)
            .await
        {
            Ok(r) => r,
            Err(crate::ports::PortError::Conflict(_)) => {
                let now = self.ledger.get(&run.run_id).await?.unwrap_or(run.clone());
                return Err(now.refuse("stop it: it left the queue meanwhile; try again"));
            }
            Err(e) => return Err(e.context("recording the run stopped")),
        };
        if let Some(token) = written.queue.as_ref().and_then(|q| q.task_token.as_deref()) {
            let out = serde_json::json!({ "resumed": "stopped", "runId": run.run_id });
            // If this fails the wait ends at its timeout and finds the run stopped.
            if let Err(e) = self.callbacks.send_success(token, &out).await {
                tracing::warn!(run_id = %run.run_id, error = %e, "could not resume the stopped run's wait");
            }
        }
        Ok(StopRequest {
            run_id: run.run_id.clone(),
            job_arn: String::new(),
            result: "dequeued".into(),
            job_status: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::poll_status::fixtures::{job, ledger_with, run, stored, t0};
    use crate::domain::errors::ErrorType;
    use crate::domain::settings::ServingMode;
    use crate::ports::JobStatus;
    use crate::testing::fakes::{FixedClock, ScriptedBedrock};

    #[tokio::test]
    async fn a_training_run_has_its_job_stopped_and_the_request_noted_but_not_its_end() {
        let r = run(RunStatus::Training, ServingMode::None);
        let ledger = ledger_with(r.clone()).await;
        let bedrock = ScriptedBedrock::with_jobs(vec![]);
        let clock = FixedClock::at(t0());
        let callbacks = crate::testing::fakes::RecordingCallbacks::default();
        let stopper = RunStopper {
            ledger: &ledger,
            bedrock: &bedrock,
            clock: &clock,
            callbacks: &callbacks,
        };
        let out = stopper.stop(&r.run_id, "alice").await.unwrap();
        assert_eq!(out.result, "stopping");
        assert_eq!(bedrock.count("stop_job"), 1);
        let after = stored(&ledger, &r.run_id).await;
        assert_eq!(
            after.status,
            RunStatus::Training,
            "the event path records the end"
        );
        let note = after.history.last().unwrap().detail.clone().unwrap();
        assert!(note.contains("requested by alice"), "{note}");
    }

    #[tokio::test]
    async fn a_queued_run_is_stopped_and_its_wait_resumed_without_asking_bedrock() {
        let mut r = run(RunStatus::Queued, ServingMode::None);
        r.job_arn = None;
        r.queue = Some(crate::domain::run::QueueEntry {
            since: t0(),
            reason: "all 2 job slot(s) taken".into(),
            task_token: Some("token-q".into()),
            held_until: None,
            quota_refusals: 0,
            for_serving: false,
            admitted_at: None,
        });
        let ledger = ledger_with(r.clone()).await;
        let bedrock = ScriptedBedrock::with_jobs(vec![]);
        let clock = FixedClock::at(t0());
        let callbacks = crate::testing::fakes::RecordingCallbacks::default();
        let stopper = RunStopper {
            ledger: &ledger,
            bedrock: &bedrock,
            clock: &clock,
            callbacks: &callbacks,
        };
        let out = stopper.stop(&r.run_id, "alice").await.unwrap();
        assert_eq!(out.result, "dequeued");
        assert!(bedrock.calls().is_empty());
        let after = stored(&ledger, &r.run_id).await;
        assert_eq!(after.status, RunStatus::Stopped);
        assert!(after.failure_reason.unwrap().contains("by alice"));
        assert_eq!(callbacks.sent().len(), 1);
        assert_eq!(callbacks.sent()[0].0, "token-q");
        // Stopping it again is refused: it is final.
        let e = stopper.stop(&r.run_id, "alice").await.unwrap_err();
        assert_eq!(e.error_type, ErrorType::Conflict);
    }

    #[tokio::test]
    async fn other_runs_are_refused_and_a_job_that_ended_is_reported() {
        let done = run(RunStatus::Completed, ServingMode::None);
        let ledger = ledger_with(done.clone()).await;
        let bedrock = ScriptedBedrock::with_jobs(vec![]);
        let clock = FixedClock::at(t0());
        let callbacks = crate::testing::fakes::RecordingCallbacks::default();
        let stopper = RunStopper {
            ledger: &ledger,
            bedrock: &bedrock,
            clock: &clock,
            callbacks: &callbacks,
        };
        let e = stopper.stop(&done.run_id, "alice").await.unwrap_err();
        assert_eq!(e.error_type, ErrorType::Conflict);
        assert!(e.message.contains("is completed"), "{}", e.message);
        assert_eq!(bedrock.count("stop_job"), 0);
        let e = stopper
            .stop(&RunId("run-ffffffffffffffffffff".into()), "alice")
            .await
            .unwrap_err();
        assert_eq!(e.error_type, ErrorType::NotFound);

        let training = run(RunStatus::Training, ServingMode::None);
        let ledger = ledger_with(training.clone()).await;
        let bedrock = ScriptedBedrock::with_jobs(vec![job(
            JobStatus::Completed,
            "Completed",
            "Completed",
            "Completed",
        )]);
        bedrock.fail_next_stop(crate::ports::PortError::Validation(
            "job is not running".into(),
        ));
        let callbacks = crate::testing::fakes::RecordingCallbacks::default();
        let stopper = RunStopper {
            ledger: &ledger,
            bedrock: &bedrock,
            clock: &clock,
            callbacks: &callbacks,
        };
        let out = stopper.stop(&training.run_id, "alice").await.unwrap();
        assert_eq!(
            (out.result.as_str(), out.job_status.as_deref()),
            ("already_ended", Some("Completed"))
        );
    }
}
