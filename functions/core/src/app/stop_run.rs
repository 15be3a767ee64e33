//! Use case: stop a training run by hand (`distillery runs stop <run-id>`).
//!
//! This only asks Bedrock to stop the job (StopModelCustomizationJob) and notes who asked on the
//! run's history. The run moves to `stopped` the way every job end reaches the ledger: Bedrock's
//! `Stopped` state-change event (or the fallback/polling read) records it and resumes the
//! execution, which announces it once. Recording `stopped` here as well would race that path and
//! could announce the end twice.

use serde::Serialize;

use crate::app::poll_status::{job_status_str, stop_job, StopAttempt};
use crate::domain::errors::StepError;
use crate::domain::run::{RunId, RunStatus, RunUpdate};
use crate::ports::{Clock, CustomizationService, RunLedger};

/// What the stop request found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopRequest {
    pub run_id: RunId,
    pub job_arn: String,
    /// `stopping` (Bedrock accepted; the run becomes `stopped` when the job has stopped) or
    /// `already_ended` (the job had ended; the pipeline records how).
    pub result: String,
    /// The job status Bedrock reported, when the job had already ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_status: Option<String>,
}

pub struct RunStopper<'a> {
    pub ledger: &'a dyn RunLedger,
    pub bedrock: &'a dyn CustomizationService,
    pub clock: &'a dyn Clock,
}

impl RunStopper<'_> {
    /// Stops the job of `run_id`, a run in `training`; `requested_by` names who asked (recorded).
    pub async fn stop(&self, run_id: &RunId, requested_by: &str) -> Result<StopRequest, StepError> {
        let run =
            self.ledger.get(run_id).await?.ok_or_else(|| {
                StepError::not_found(format!("run {run_id} is not in the ledger"))
            })?;
        if run.status != RunStatus::Training {
            return Err(run.refuse("stop it (only a run in training has a job to stop)"));
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
        let stopper = RunStopper {
            ledger: &ledger,
            bedrock: &bedrock,
            clock: &clock,
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
    async fn other_runs_are_refused_and_a_job_that_ended_is_reported() {
        let done = run(RunStatus::Completed, ServingMode::None);
        let ledger = ledger_with(done.clone()).await;
        let bedrock = ScriptedBedrock::with_jobs(vec![]);
        let clock = FixedClock::at(t0());
        let stopper = RunStopper {
            ledger: &ledger,
            bedrock: &bedrock,
            clock: &clock,
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
        let stopper = RunStopper {
            ledger: &ledger,
            bedrock: &bedrock,
            clock: &clock,
        };
        let out = stopper.stop(&training.run_id, "alice").await.unwrap();
        assert_eq!(
            (out.result.as_str(), out.job_status.as_deref()),
            ("already_ended", Some("Completed"))
        );
    }
}
