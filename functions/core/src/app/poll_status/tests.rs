use super::fixtures::*;
use super::*;
use crate::domain::catalog::Limits;
use crate::domain::errors::ErrorType;
use crate::ports::{
    DeploymentRequest, DeploymentState, DistillationJobRequest, ThroughputRequest, ThroughputState,
};
use crate::testing::fakes::{FixedClock, ScriptedBedrock};
use crate::testing::memory::InMemoryRunLedger;

fn config() -> PollConfig {
    PollConfig {
        initial_wait_seconds: 60,
        max_wait_seconds: 900,
        max_job_duration_seconds: 3600,
        give_up_after_permanent_errors: 3,
    }
}

fn input(attempt: u32) -> PollStatusInput {
    PollStatusInput {
        run_id: RunId("run-0123456789abcdef0123".into()),
        attempt,
        consecutive_errors: 0,
        give_up: false,
    }
}

#[tokio::test]
async fn records_sub_status_changes_only_when_they_change_then_completes() {
    let mut done = job(JobStatus::Completed, "Completed", "Completed", "Completed");
    done.output_model_arn = Some("arn:aws:bedrock:us-east-1:123456789012:custom-model/m1".into());
    done.output_model_name = Some("support-chats-distilled-x".into());
    let bedrock = ScriptedBedrock::with_jobs(vec![
        job(
            JobStatus::InProgress,
            "InProgress",
            "NotStarted",
            "NotStarted",
        ),
        job(
            JobStatus::InProgress,
            "InProgress",
            "NotStarted",
            "NotStarted",
        ),
        job(
            JobStatus::InProgress,
            "Completed",
            "InProgress",
            "NotStarted",
        ),
        done,
    ]);
    let ledger = ledger_with(run(RunStatus::Training, ServingMode::None)).await;
    let clock = FixedClock::at(t0() + chrono::Duration::minutes(5));
    let poller = StatusPoller {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(),
    };
    let id = input(0).run_id;
    let history0 = stored(&ledger, &id).await.history.len();

    let o = poller.poll(&input(0)).await.unwrap();
    assert_eq!(
        (o.outcome, o.terminal, o.attempt, o.next_wait_seconds),
        (PollOutcome::Running, false, 1, 60)
    );
    assert_eq!(o.job_status, "InProgress");
    let after_first = stored(&ledger, &id).await;
    assert_eq!(after_first.history.len(), history0 + 1);
    assert_eq!(
        after_first
            .training_detail
            .as_ref()
            .unwrap()
            .validation
            .as_deref(),
        Some("InProgress")
    );

    // Same answer from Bedrock: no write at all.
    let o = poller.poll(&input(1)).await.unwrap();
    assert_eq!(
        (o.outcome, o.next_wait_seconds),
        (PollOutcome::Running, 120)
    );
    assert_eq!(stored(&ledger, &id).await, after_first);

    let o = poller.poll(&input(2)).await.unwrap();
    assert_eq!(o.next_wait_seconds, 240);
    let r = stored(&ledger, &id).await;
    assert_eq!(r.history.len(), history0 + 2);
    assert!(r
        .history
        .last()
        .unwrap()
        .detail
        .as_deref()
        .unwrap()
        .contains("dataProcessing=InProgress"));

    let o = poller.poll(&input(3)).await.unwrap();
    assert_eq!(
        (o.outcome, o.terminal, o.next_wait_seconds),
        (PollOutcome::Completed, true, 0)
    );
    assert_eq!(
        o.output_model_arn.as_deref(),
        Some("arn:aws:bedrock:us-east-1:123456789012:custom-model/m1")
    );
    let r = stored(&ledger, &id).await;
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.custom_model_arn, o.output_model_arn);
    assert_eq!(r.finished_at, Some(clock.now()));
    assert_eq!(r.history.len(), history0 + 3);
    assert_eq!(bedrock.count("get_job"), 4);

    // A retried poll after completion answers from the ledger: no Bedrock call, no write.
    let again = poller.poll(&input(3)).await.unwrap();
    assert_eq!(again.outcome, PollOutcome::Completed);
    assert_eq!(again.output_model_arn, o.output_model_arn);
    assert_eq!(bedrock.count("get_job"), 4);
    assert_eq!(stored(&ledger, &id).await, r);
}

#[tokio::test]
async fn failed_job_records_bedrocks_failure_message() {
    let mut failed = job(JobStatus::Failed, "Completed", "Failed", "NotStarted");
    failed.failure_message = Some("Insufficient valid records: 12 of 100".into());
    let bedrock = ScriptedBedrock::with_jobs(vec![failed]);
    let ledger = ledger_with(run(RunStatus::Training, ServingMode::None)).await;
    let clock = FixedClock::at(t0());
    let poller = StatusPoller {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(),
    };
    let o = poller.poll(&input(4)).await.unwrap();
    assert_eq!(o.outcome, PollOutcome::Failed);
    assert!(o.terminal);
    assert_eq!(
        o.failure_message.as_deref(),
        Some("Insufficient valid records: 12 of 100")
    );
    let r = stored(&ledger, &o.run_id).await;
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(
        r.failure_reason.as_deref(),
        Some("Insufficient valid records: 12 of 100")
    );
    let again = poller.poll(&input(5)).await.unwrap();
    assert_eq!(again.outcome, PollOutcome::Failed);
    assert_eq!(bedrock.count("get_job"), 1);
}

#[tokio::test]
async fn stopped_job_is_recorded_stopped() {
    let bedrock =
        ScriptedBedrock::with_jobs(vec![job(JobStatus::Stopped, "Completed", "Stopped", "")]);
    let ledger = ledger_with(run(RunStatus::Training, ServingMode::None)).await;
    let clock = FixedClock::at(t0());
    let poller = StatusPoller {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(),
    };
    let o = poller.poll(&input(0)).await.unwrap();
    assert_eq!(
        (o.outcome, o.job_status.as_str()),
        (PollOutcome::Stopped, "Stopped")
    );
    assert_eq!(stored(&ledger, &o.run_id).await.status, RunStatus::Stopped);
}

#[tokio::test]
async fn a_job_past_the_bound_is_stopped_and_the_run_failed() {
    let bedrock = ScriptedBedrock::with_jobs(vec![job(
        JobStatus::InProgress,
        "Completed",
        "Completed",
        "InProgress",
    )]);
    let ledger = ledger_with(run(RunStatus::Training, ServingMode::Provisioned)).await;
    // Exactly at the bound is still allowed; one second past it is not.
    let clock = FixedClock::at(t0() + chrono::Duration::seconds(3600));
    let poller = StatusPoller {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(),
    };
    assert_eq!(
        poller.poll(&input(7)).await.unwrap().outcome,
        PollOutcome::Running
    );
    assert_eq!(bedrock.count("stop_job"), 0);

    clock.set(t0() + chrono::Duration::seconds(3601));
    let o = poller.poll(&input(8)).await.unwrap();
    assert_eq!((o.outcome, o.terminal), (PollOutcome::TimedOut, true));
    assert_eq!(bedrock.count("stop_job"), 1);
    let r = stored(&ledger, &o.run_id).await;
    assert_eq!(r.status, RunStatus::Stopped);
    let reason = r.failure_reason.clone().unwrap();
    assert!(reason.contains("MAX_JOB_DURATION_SECONDS=3600"), "{reason}");
    assert!(
        reason.contains("the pipeline stopped job arn:aws:bedrock"),
        "{reason}"
    );
    assert!(reason.contains("3601s"), "{reason}");

    // Re-polled (a retry): still timed_out, no second stop, no write.
    let again = poller.poll(&input(9)).await.unwrap();
    assert_eq!(again.outcome, PollOutcome::TimedOut);
    assert_eq!(bedrock.count("stop_job"), 1);
    assert_eq!(stored(&ledger, &o.run_id).await, r);
}

#[tokio::test]
async fn errors_are_typed() {
    let ledger = InMemoryRunLedger::new();
    let bedrock = ScriptedBedrock::default();
    let clock = FixedClock::at(t0());
    let poller = StatusPoller {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(),
    };
    assert_eq!(
        poller.poll(&input(0)).await.unwrap_err().error_type,
        ErrorType::NotFound
    );

    let mut validated = run(RunStatus::Validated, ServingMode::None);
    validated.job_arn = None;
    let ledger = ledger_with(validated).await;
    let poller = StatusPoller {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(),
    };
    let e = poller.poll(&input(0)).await.unwrap_err();
    assert_eq!(e.error_type, ErrorType::Conflict);
    assert!(e.message.contains("validated"), "{}", e.message);
}

fn failing_bedrock(errors: Vec<PortError>, then: Option<JobState>) -> ScriptedBedrock {
    let b = ScriptedBedrock::default();
    let mut q = b.jobs.lock().unwrap();
    q.extend(errors.into_iter().map(Err));
    if let Some(j) = then {
        q.push_back(Ok(j));
    }
    drop(q);
    b
}

#[tokio::test]
async fn a_throttling_storm_keeps_tracking_the_job_and_ends_with_its_true_outcome() {
    let mut errors = vec![PortError::Throttled("Rate exceeded".into()); 20];
    errors.push(PortError::Transient("HTTP 500".into()));
    let mut done = job(JobStatus::Completed, "Completed", "Completed", "Completed");
    done.output_model_arn = Some("arn:aws:bedrock:us-east-1:123456789012:custom-model/m1".into());
    let bedrock = failing_bedrock(errors, Some(done));
    let ledger = ledger_with(run(RunStatus::Training, ServingMode::None)).await;
    let clock = FixedClock::at(t0() + chrono::Duration::minutes(5));
    let poller = StatusPoller {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(),
    };
    let id = input(0).run_id;
    let before = stored(&ledger, &id).await;
    let mut next = input(0);
    for n in 1..=21u32 {
        let o = poller.poll(&next).await.unwrap();
        assert_eq!(
            (o.outcome, o.terminal, o.job_status.as_str()),
            (PollOutcome::Running, false, "Unknown")
        );
        assert_eq!(o.consecutive_errors, n);
        // The longest wait: no storm on top of a storm.
        assert_eq!(o.next_wait_seconds, 900);
        assert!(
            o.poll_error
                .as_deref()
                .unwrap()
                .contains("GetModelCustomizationJob"),
            "{:?}",
            o.poll_error
        );
        next.attempt = o.attempt;
        next.consecutive_errors = o.consecutive_errors;
    }
    // Nothing written while Bedrock could not be read; the job was never stopped.
    assert_eq!(stored(&ledger, &id).await, before);
    assert_eq!(bedrock.count("stop_job"), 0);
    let o = poller.poll(&next).await.unwrap();
    assert_eq!(
        (o.outcome, o.consecutive_errors),
        (PollOutcome::Completed, 0)
    );
    assert_eq!(stored(&ledger, &id).await.status, RunStatus::Completed);
}

#[tokio::test]
async fn persistent_access_denied_stops_the_job_and_records_why() {
    let bedrock = failing_bedrock(
        vec![PortError::AccessDenied("not authorized to GetModelCustomizationJob".into()); 5],
        None,
    );
    let ledger = ledger_with(run(RunStatus::Training, ServingMode::None)).await;
    let clock = FixedClock::at(t0() + chrono::Duration::minutes(5));
    let poller = StatusPoller {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(),
    };
    let mut next = input(0);
    for _ in 0..2 {
        let o = poller.poll(&next).await.unwrap();
        assert_eq!(o.outcome, PollOutcome::Running);
        next.attempt = o.attempt;
        next.consecutive_errors = o.consecutive_errors;
    }
    let o = poller.poll(&next).await.unwrap();
    assert_eq!((o.outcome, o.terminal), (PollOutcome::Stopped, true));
    assert_eq!(bedrock.count("stop_job"), 1);
    let r = stored(&ledger, &o.run_id).await;
    assert_eq!(r.status, RunStatus::Stopped);
    let reason = r.failure_reason.unwrap();
    assert!(reason.contains("the pipeline stopped job"), "{reason}");
    assert!(reason.contains("non-retryable error 3 polls"), "{reason}");
    assert!(r
        .history
        .last()
        .unwrap()
        .detail
        .as_deref()
        .unwrap()
        .contains("not authorized"));
}

#[tokio::test]
async fn throttled_past_the_maximum_duration_stops_the_job() {
    let bedrock = failing_bedrock(vec![PortError::Throttled("Rate exceeded".into()); 3], None);
    let ledger = ledger_with(run(RunStatus::Training, ServingMode::None)).await;
    let clock = FixedClock::at(t0() + chrono::Duration::seconds(3601));
    let poller = StatusPoller {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(),
    };
    let o = poller.poll(&input(4)).await.unwrap();
    assert_eq!(o.outcome, PollOutcome::TimedOut);
    assert_eq!(bedrock.count("stop_job"), 1);
    assert_eq!(stored(&ledger, &o.run_id).await.status, RunStatus::Stopped);
}

#[tokio::test]
async fn a_spent_poll_budget_stops_a_running_job() {
    let bedrock = ScriptedBedrock::with_jobs(vec![job(
        JobStatus::InProgress,
        "Completed",
        "Completed",
        "InProgress",
    )]);
    let ledger = ledger_with(run(RunStatus::Training, ServingMode::None)).await;
    let clock = FixedClock::at(t0() + chrono::Duration::minutes(5));
    let poller = StatusPoller {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(),
    };
    let mut i = input(1200);
    i.give_up = true;
    let o = poller.poll(&i).await.unwrap();
    assert_eq!(o.outcome, PollOutcome::Stopped);
    assert_eq!(bedrock.count("stop_job"), 1);
    let r = stored(&ledger, &o.run_id).await;
    assert_eq!(r.status, RunStatus::Stopped);
    assert!(r.failure_reason.unwrap().contains("1200 polls"));
}

/// A Bedrock whose StopModelCustomizationJob always fails.
struct StopFails(ScriptedBedrock);

#[async_trait::async_trait]
impl CustomizationService for StopFails {
    async fn create_distillation_job(
        &self,
        r: &DistillationJobRequest,
    ) -> Result<String, PortError> {
        self.0.create_distillation_job(r).await
    }
    async fn get_job(&self, j: &str) -> Result<JobState, PortError> {
        self.0.get_job(j).await
    }
    async fn stop_job(&self, j: &str) -> Result<(), PortError> {
        self.0.stop_job(j).await?;
        Err(PortError::Transient(
            "HTTP 503 from StopModelCustomizationJob".into(),
        ))
    }
    async fn create_provisioned_throughput(
        &self,
        r: &ThroughputRequest,
    ) -> Result<String, PortError> {
        self.0.create_provisioned_throughput(r).await
    }
    async fn get_provisioned_throughput(&self, id: &str) -> Result<ThroughputState, PortError> {
        self.0.get_provisioned_throughput(id).await
    }
    async fn delete_provisioned_throughput(&self, id: &str) -> Result<(), PortError> {
        self.0.delete_provisioned_throughput(id).await
    }
    async fn create_custom_model_deployment(
        &self,
        r: &DeploymentRequest,
    ) -> Result<String, PortError> {
        self.0.create_custom_model_deployment(r).await
    }
    async fn get_custom_model_deployment(&self, id: &str) -> Result<DeploymentState, PortError> {
        self.0.get_custom_model_deployment(id).await
    }
    async fn delete_custom_model_deployment(&self, id: &str) -> Result<(), PortError> {
        self.0.delete_custom_model_deployment(id).await
    }
}

#[tokio::test]
async fn a_failed_stop_keeps_the_run_training_for_the_reconciler() {
    let bedrock = StopFails(ScriptedBedrock::with_jobs(vec![job(
        JobStatus::InProgress,
        "Completed",
        "Completed",
        "InProgress",
    )]));
    let ledger = ledger_with(run(RunStatus::Training, ServingMode::None)).await;
    let clock = FixedClock::at(t0() + chrono::Duration::seconds(4000));
    let poller = StatusPoller {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(),
    };
    let o = poller.poll(&input(3)).await.unwrap();
    assert_eq!((o.outcome, o.terminal), (PollOutcome::StopFailed, true));
    let r = stored(&ledger, &o.run_id).await;
    assert_eq!(r.status, RunStatus::Training);
    let reason = r.failure_reason.unwrap();
    assert!(
        reason.contains("StopModelCustomizationJob failed"),
        "{reason}"
    );
    assert!(reason.contains("reconciler"), "{reason}");
}

#[test]
fn config_from_env_with_defaults_and_clear_errors() {
    let limits = Limits::builtin();
    let d = PollConfig::from_lookup(&limits, env(&[])).unwrap();
    assert_eq!(d.initial_wait_seconds, limits.polling.initial_wait_seconds);
    assert_eq!(
        d.max_job_duration_seconds,
        limits.polling.max_job_duration_hours * 3600
    );
    let c = PollConfig::from_lookup(
        &limits,
        env(&[
            ("POLL_INITIAL_WAIT_SECONDS", "5"),
            ("POLL_MAX_WAIT_SECONDS", "40"),
            ("MAX_JOB_DURATION_SECONDS", "7200"),
        ]),
    )
    .unwrap();
    assert_eq!(
        (
            c.initial_wait_seconds,
            c.max_wait_seconds,
            c.max_job_duration_seconds
        ),
        (5, 40, 7200)
    );
    let e = PollConfig::from_lookup(&limits, env(&[("POLL_MAX_WAIT_SECONDS", "ten")])).unwrap_err();
    assert_eq!(e.error_type, ErrorType::ConfigInvalid);
    assert!(e.message.contains("POLL_MAX_WAIT_SECONDS") && e.message.contains("ten"));
    let e = PollConfig::from_lookup(
        &limits,
        env(&[
            ("POLL_INITIAL_WAIT_SECONDS", "1000"),
            ("POLL_MAX_WAIT_SECONDS", "10"),
        ]),
    )
    .unwrap_err();
    assert!(e.message.contains("must not exceed"));
}

#[test]
fn sample_events_match_the_types() {
    let i: PollStatusInput =
        serde_json::from_str(include_str!("../../../../../events/poll-status.json")).unwrap();
    assert_eq!(i.attempt, 3);
    let o: PollStatusOutput = serde_json::from_str(include_str!(
        "../../../../../events/poll-status-output.json"
    ))
    .unwrap();
    assert_eq!(
        (o.outcome, o.terminal, o.attempt),
        (PollOutcome::Completed, true, 4)
    );
}

#[test]
fn io_matches_the_contract() {
    let i: PollStatusInput = serde_json::from_str(r#"{"runId":"run-1"}"#).unwrap();
    assert_eq!(i.attempt, 0);
    let out = recorded_outcome(&run(RunStatus::Completed, ServingMode::Provisioned), 2).unwrap();
    let v = serde_json::to_value(&out).unwrap();
    for k in [
        "runId",
        "jobStatus",
        "outcome",
        "terminal",
        "attempt",
        "nextWaitSeconds",
        "outputModelArn",
        "failureMessage",
        "serving",
    ] {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
    assert_eq!(v["outcome"], "completed");
    assert_eq!(v["serving"], "provisioned");
    assert_eq!(
        serde_json::to_value(PollOutcome::TimedOut).unwrap(),
        "timed_out"
    );
}

/// A Bedrock whose job completes just as the pipeline gives up: the stop is refused.
struct StopRefused(ScriptedBedrock);

#[async_trait::async_trait]
impl CustomizationService for StopRefused {
    async fn create_distillation_job(
        &self,
        r: &DistillationJobRequest,
    ) -> Result<String, PortError> {
        self.0.create_distillation_job(r).await
    }
    async fn get_job(&self, j: &str) -> Result<JobState, PortError> {
        self.0.get_job(j).await
    }
    async fn stop_job(&self, j: &str) -> Result<(), PortError> {
        self.0.stop_job(j).await?;
        Err(PortError::Conflict(
            "Job cannot be stopped: its status is Completed".into(),
        ))
    }
    async fn create_provisioned_throughput(
        &self,
        r: &ThroughputRequest,
    ) -> Result<String, PortError> {
        self.0.create_provisioned_throughput(r).await
    }
    async fn get_provisioned_throughput(&self, id: &str) -> Result<ThroughputState, PortError> {
        self.0.get_provisioned_throughput(id).await
    }
    async fn delete_provisioned_throughput(&self, id: &str) -> Result<(), PortError> {
        self.0.delete_provisioned_throughput(id).await
    }
    async fn create_custom_model_deployment(
        &self,
        r: &DeploymentRequest,
    ) -> Result<String, PortError> {
        self.0.create_custom_model_deployment(r).await
    }
    async fn get_custom_model_deployment(&self, id: &str) -> Result<DeploymentState, PortError> {
        self.0.get_custom_model_deployment(id).await
    }
    async fn delete_custom_model_deployment(&self, id: &str) -> Result<(), PortError> {
        self.0.delete_custom_model_deployment(id).await
    }
}

#[tokio::test]
async fn a_refused_stop_records_the_jobs_true_outcome() {
    let mut done = job(JobStatus::Completed, "Completed", "Completed", "Completed");
    done.output_model_arn = Some("arn:aws:bedrock:us-east-1:123456789012:custom-model/m1".into());
    let bedrock = StopRefused(ScriptedBedrock::with_jobs(vec![
        job(
            JobStatus::InProgress,
            "Completed",
            "Completed",
            "InProgress",
        ),
        done,
    ]));
    let ledger = ledger_with(run(RunStatus::Training, ServingMode::None)).await;
    let clock = FixedClock::at(t0() + chrono::Duration::seconds(4000));
    let poller = StatusPoller {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(),
    };
    let o = poller.poll(&input(3)).await.unwrap();
    assert_eq!(o.outcome, PollOutcome::Completed);
    assert_eq!(
        stored(&ledger, &o.run_id).await.status,
        RunStatus::Completed
    );
}

/// A ledger whose first update loses a race (as when a duplicated execution's poll wrote first).
struct LosesFirstRace(InMemoryRunLedger, std::sync::atomic::AtomicBool);

#[async_trait::async_trait]
impl RunLedger for LosesFirstRace {
    async fn create(&self, run: &Run) -> Result<crate::ports::CreateOutcome, PortError> {
        self.0.create(run).await
    }
    async fn get(&self, id: &RunId) -> Result<Option<Run>, PortError> {
        self.0.get(id).await
    }
    async fn update(
        &self,
        id: &RunId,
        expected: &[RunStatus],
        update: &RunUpdate,
    ) -> Result<Run, PortError> {
        if !self.1.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(PortError::Conflict("conditional write failed".into()));
        }
        self.0.update(id, expected, update).await
    }
    async fn list_recent(&self, limit: usize) -> Result<Vec<Run>, PortError> {
        self.0.list_recent(limit).await
    }
    async fn list_by_status(&self, s: RunStatus, limit: usize) -> Result<Vec<Run>, PortError> {
        self.0.list_by_status(s, limit).await
    }
}

#[tokio::test]
async fn a_lost_race_on_a_training_run_keeps_polling_instead_of_failing() {
    let inner = ledger_with(run(RunStatus::Training, ServingMode::None)).await;
    let ledger = LosesFirstRace(inner, Default::default());
    let bedrock = ScriptedBedrock::with_jobs(vec![job(
        JobStatus::InProgress,
        "Completed",
        "InProgress",
        "NotStarted",
    )]);
    let clock = FixedClock::at(t0() + chrono::Duration::minutes(5));
    let poller = StatusPoller {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(),
    };
    let o = poller.poll(&input(0)).await.unwrap();
    assert_eq!((o.outcome, o.terminal), (PollOutcome::Running, false));
    assert!(o.poll_error.unwrap().contains("changed while polling"));
    // The next poll writes.
    let o = poller.poll(&input(1)).await.unwrap();
    assert_eq!(o.outcome, PollOutcome::Running);
    let r = ledger.0.get(&o.run_id).await.unwrap().unwrap();
    assert!(r.training_detail.is_some());
}

#[tokio::test]
async fn a_refused_stop_whose_re_read_fails_is_a_failed_stop() {
    let bedrock = StopRefused(ScriptedBedrock::default());
    *bedrock.0.jobs.lock().unwrap() = vec![
        Ok(job(
            JobStatus::InProgress,
            "Completed",
            "Completed",
            "InProgress",
        )),
        Err(PortError::Transient("HTTP 503".into())),
    ]
    .into();
    let ledger = ledger_with(run(RunStatus::Training, ServingMode::None)).await;
    let clock = FixedClock::at(t0() + chrono::Duration::seconds(4000));
    let poller = StatusPoller {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(),
    };
    let o = poller.poll(&input(3)).await.unwrap();
    assert_eq!(o.outcome, PollOutcome::StopFailed);
    let r = stored(&ledger, &o.run_id).await;
    assert_eq!(r.status, RunStatus::Training);
    let reason = r.failure_reason.unwrap();
    assert!(reason.contains("re-reading the job failed"), "{reason}");
}
